// The accepting side of Xen channel set-up (see protocol.ts for the XenStore layout). listenXen
// publishes the endpoint under our domain's data/xway/<port> and watches its offers/ directory;
// for each new offer it checks everything the client wrote, binds to the client's event port, maps
// the client's grant references at a slot of this thread's region pool, checks the channel header,
// and answers "accepted" — or "refused:<reason> <text>" after releasing whatever it made.

import { Channel } from '../../ring/channel.js';
import { type HostChannelOptions } from '../host/limits.js';
import { ProtocolError, type RefuseReason } from '../host/protocol.js';
import { regionPool } from '../common/region-pool.js';
import { XenChannelEnd } from './channel-end.js';
import { bindInterdomain, unbindPort } from './events.js';
import { xenAddon } from './native.js';
import { aliveOffsets, endpointPath, MAX_DOMID, ownerOf, parseInteger, readOffer, XS_VERSION } from './protocol.js';
import { resolveXenOptions } from './connect.js';
import { holdStore, selfDomid, watch, xenStore } from './store.js';
import { EphemeralPorts, type Route } from '../../socket/identity.js';

export interface XenListener {
  readonly domid: number;
  readonly port: number;
  /** The endpoint's XenStore path. */
  readonly path: string;
  close(): void;
  ref(): void;
  unref(): void;
}

export interface XenListenOptions extends HostChannelOptions {
  /** Domains allowed to read the endpoint and offer channels; default: any domain (XenStore and
   *  the grant tables still only let through what the administrator permits). */
  allowDomains?: number[];
  /** An offer was refused; for logs and tests. */
  onRefused?: (reason: RefuseReason, message: string, client: number | null) => void;
  /** Why a client of domain `client` cannot reach this listener along `route` (null: it can).
   *  Default: every route. */
  admit?: (route: Route, client: number) => string | null;
  /** The listener's ephemeral ports (shared with its other platforms' listeners). */
  ports?: EphemeralPorts;
}

/** Publishes an endpoint for `port` and calls `onChannel` for each established channel. */
export function listenXen(port: number, options: XenListenOptions, onChannel: (end: XenChannelEnd) => void): XenListener {
  const native = xenAddon();
  const xs = xenStore();
  const limits = resolveXenOptions(options);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new RangeError(`port must be 0..65535, got ${port}`);
  const self = selfDomid();
  const path = endpointPath(self, port);
  const allowed = options.allowDomains?.map((d) => parseInteger(String(d), 'allowDomains entry', 0, MAX_DOMID));
  // Readable by everybody (or the allowed domains); offers/ accepts new nodes from them.
  const readPerms = allowed ? [`n${self}`, ...allowed.map((d) => `r${d}`)] : [`r${self}`];
  const offerPerms = allowed ? [`n${self}`, ...allowed.map((d) => `w${d}`)] : [`w${self}`];
  xs.rm(path); // a previous listener of ours that died without cleaning up
  xs.writeAll([
    [path, '', readPerms],
    [`${path}/version`, XS_VERSION, readPerms],
    [`${path}/domid`, String(self), readPerms],
    [`${path}/max-capacity`, String(limits.maxCapacity), readPerms],
    [`${path}/offers`, '', offerPerms],
  ]);

  /** Offers seen, by name; true while being handled or answered (the client removes its offer). */
  const seen = new Set<string>();
  const ports = options.ports ?? new EphemeralPorts();
  let closed = false;
  let refd = false;

  const answer = (offerPath: string, state: string) => {
    try { xs.write(`${offerPath}/state`, state); } catch { /* the client withdrew it */ }
  };

  const handle = (name: string) => {
    const offerPath = `${path}/offers/${name}`;
    let client: number | null = null;
    let evPort = -1;
    let offset = -1;
    let memory = regionPool().memory;
    let slotSize = 0;
    let mapped = false;
    let ephemeral = 0;
    try {
      if (xs.read(`${offerPath}/state`) !== 'offered') return false; // not complete yet, or answered
      client = ownerOf(xs, offerPath);
      if (client === null) return false;
      if (allowed && !allowed.includes(client)) throw new ProtocolError('malformed', `domain ${client} is not allowed`);
      if (!name.startsWith(`${client}-`)) throw new ProtocolError('malformed', `offer ${name} was created by domain ${client}`);
      const offer = readOffer(xs, offerPath, client, limits.maxCapacity);
      const refusal = options.admit?.(offer.route, client) ?? null;
      if (refusal !== null) throw new ProtocolError('malformed', refusal);
      try {
        ephemeral = ports.allocate();
      } catch (err) {
        throw new ProtocolError('busy', (err as Error).message);
      }
      const pool = regionPool();
      slotSize = Math.ceil(offer.size / 65536) * 65536;
      ({ memory, offset } = pool.allocate(slotSize));
      let end: XenChannelEnd | undefined;
      evPort = bindInterdomain(client, offer.eventPort, () => end?.wake());
      const alive = aliveOffsets(offer.size);
      native.xenGrantMap(pool.view(memory), offset, offer.size, client, offer.grefs, alive.acceptor, evPort);
      mapped = true;
      // Capacities from the offer we checked; attach() checks the header the client laid out.
      const channel = Channel.attach(memory, offset, { capacityA: offer.capacityA, capacityB: offer.capacityB }, 'acceptor');
      const bytes = new Uint8Array(memory.buffer);
      if (Atomics.load(bytes, offset + alive.initiator) !== 1) throw new ProtocolError('malformed', 'the client does not hold the channel it offered');
      Atomics.store(bytes, offset + alive.acceptor, 1);
      end = new XenChannelEnd({ channel, size: offer.size, slotSize, port: evPort, domid: client, ownAlive: alive.acceptor, peerAlive: alive.initiator });
      end.connection = { port: ephemeral, route: offer.route };
      end.onclose = () => ports.release(ephemeral);
      answer(offerPath, `accepted:${ephemeral}`);
      onChannel(end);
      return true;
    } catch (err) {
      if (ephemeral !== 0) ports.release(ephemeral);
      const pool = regionPool();
      if (mapped) native.segmentUnmap(pool.view(memory), offset, slotSize);
      if (evPort >= 0) unbindPort(evPort);
      if (offset >= 0) pool.release({ memory, offset }, slotSize);
      const reason: RefuseReason = err instanceof ProtocolError ? err.reason : 'internal';
      const text = (err as Error).message;
      answer(offerPath, `refused:${reason} ${text}`.slice(0, 1000));
      options.onRefused?.(reason, text, client);
      return true;
    }
  };

  const scan = () => {
    if (closed) return;
    let names: string[] | null;
    try {
      names = xs.directory(`${path}/offers`);
    } catch {
      return;
    }
    if (names === null) {
      // offers/ accepts writes from other domains, and in XenStore who may write a node may
      // remove it: a hostile guest can delete it (and every pending offer in it). Put it back,
      // or no client could offer again.
      try { xs.writeAll([[`${path}/offers`, '', offerPerms]]); } catch { /* XenStore gone */ }
      return;
    }
    const present = new Set(names);
    for (const name of seen) if (!present.has(name)) seen.delete(name); // withdrawn: forget it
    for (const name of names) {
      if (seen.has(name)) continue;
      if (handle(name)) seen.add(name); // set-up is synchronous: nothing is ever half done here
    }
  };

  const unwatch = watch(`${path}/offers`, scan);
  const listener: XenListener = {
    domid: self,
    port,
    path,
    close() {
      if (closed) return;
      listener.unref(); // before `closed`: unref() is a no-op once closed
      closed = true;
      unwatch();
      try { xs.rm(path); } catch { /* XenStore gone */ }
    },
    ref() {
      if (closed || refd) return;
      refd = true;
      holdStore(true);
    },
    unref() {
      if (closed || !refd) return;
      refd = false;
      holdStore(false);
    },
  };
  listener.ref();
  return listener;
}
