// The connecting side of Xen channel set-up (see protocol.ts for the XenStore layout): find the
// endpoint, lay the channel out in pages granted to the server's domain, offer the grant
// references and an unbound event port in one XenStore transaction, and wait for the server to
// accept. The promise settles with an established channel end, or rejects with a typed error after
// withdrawing the offer and releasing every grant, port and slot it made.

import { randomBytes } from 'node:crypto';
import { Channel } from '../../ring/channel.js';
import { XwayError } from '../../errors.js';
import { SetupError } from '../host/connect.js';
import { resolveOptions, type HostChannelOptions } from '../host/limits.js';
import { ProtocolError } from '../host/protocol.js';
import { regionPool } from '../common/region-pool.js';
import { XenChannelEnd } from './channel-end.js';
import { bindUnbound, unbindPort } from './events.js';
import { xenAddon } from './native.js';
import { addressKey, aliveOffsets, grantBytes, HOSTS_PATH, MAX_DOMID, offerEntries, parseInteger, readEndpoint, type XenEndpoint } from './protocol.js';
import { selfDomid, watch, xenStore } from './store.js';
import type { Route } from '../../socket/identity.js';

export interface XenChannelOptions extends HostChannelOptions {
  /** The address connected to and the one connected from, as the client sees them. */
  route?: Route;
}

/** Ring capacity of a Xen channel unless asked otherwise: 64 KiB per direction = 33 granted
 *  pages, so gntalloc's default budget (1024 pages per domain) holds about 30 channels. */
export const XEN_DEFAULT_CAPACITY = 64 * 1024;

export function resolveXenOptions(o: XenChannelOptions = {}): Required<HostChannelOptions> {
  const { route: _route, ...limits } = o;
  return resolveOptions({ ...limits, capacity: o.capacity ?? XEN_DEFAULT_CAPACITY });
}

/** The endpoint domain `domid` publishes for `port`, or null (none, or not readable from here). */
export function lookupXenEndpoint(domid: number, port: number): XenEndpoint | null {
  xenAddon();
  return readEndpoint(xenStore(), domid, port);
}

/** The domain the host administrator recorded for `address` (scripts/xen-permit.sh), or null. */
export function xenPeerFor(address: string): number | null {
  xenAddon();
  let value: string | null;
  try {
    value = xenStore().read(`${HOSTS_PATH}/${addressKey(address)}`);
  } catch (err) {
    if ((err as { code?: string }).code === 'EACCES' || err instanceof ProtocolError) return null;
    throw err;
  }
  return value === null ? null : parseInteger(value, `${HOSTS_PATH} entry for ${address}`, 0, MAX_DOMID);
}

export { selfDomid };

/** Sets up a channel with the endpoint domain `domid` publishes for `port`. Rejects with
 *  XenUnavailableError (ERR_XWAY_XEN_UNAVAILABLE) where Xen is absent, SetupError (ERR_XWAY_SETUP)
 *  when there is no endpoint or the server refuses, ProtocolError for malformed records. */
export async function connectXen(domid: number, port: number, options: XenChannelOptions = {}): Promise<XenChannelEnd> {
  const native = xenAddon();
  const limits = resolveXenOptions(options);
  const xs = xenStore();
  const capacityA = limits.capacity;
  const capacityB = limits.capacity;
  const route = options.route ?? { target: '0.0.0.0', source: '0.0.0.0' };
  if (!Number.isInteger(domid) || domid < 0 || domid > MAX_DOMID) throw new SetupError(`bad domain id ${domid}`);

  return new Promise((resolve, reject) => {
    const endpoint = readEndpoint(xs, domid, port);
    if (!endpoint) throw new SetupError(`domain ${domid} publishes no xway endpoint for port ${port}`);
    if (capacityA > endpoint.maxCapacity) {
      throw new SetupError(`ring capacity ${capacityA} exceeds the endpoint's maximum ${endpoint.maxCapacity}`);
    }
    const self = selfDomid();
    const pool = regionPool();
    const size = grantBytes(capacityA, capacityB);
    const slotSize = Math.ceil(size / 65536) * 65536;
    const alive = aliveOffsets(size);
    const offerPath = `${endpoint.path}/offers/${self}-${randomBytes(6).toString('hex')}`;
    let offset = -1;
    let memory = regionPool().memory;
    let evPort = -1;
    let mapped = false;
    let offered = false;
    let end: XenChannelEnd | undefined;
    let unwatch: (() => void) | null = null;
    let timer: NodeJS.Timeout | undefined;
    let settled = false;

    const cleanup = () => {
      clearTimeout(timer);
      unwatch?.();
      unwatch = null;
      if (offered) {
        offered = false;
        try { xs.rm(offerPath); } catch { /* XenStore gone: nothing left to withdraw */ }
      }
    };
    const fail = (err: unknown) => {
      if (settled) return;
      settled = true;
      cleanup();
      if (mapped) native.segmentUnmap(pool.view(memory), offset, slotSize);
      if (evPort >= 0) unbindPort(evPort);
      if (offset >= 0) pool.release({ memory, offset }, slotSize);
      reject(err instanceof XwayError ? err : new SetupError(`Xen channel set-up failed: ${(err as Error).message}`, { cause: err }));
    };

    try {
      ({ memory, offset } = pool.allocate(slotSize));
      evPort = bindUnbound(domid, () => end?.wake());
      const grefs = native.xenGrantShare(pool.view(memory), offset, size, domid, alive.initiator, evPort);
      mapped = true;
      const channel = Channel.create(memory, offset, { capacityA, capacityB }, 'initiator');
      Atomics.store(new Uint8Array(memory.buffer), offset + alive.initiator, 1);

      const onState = () => {
        if (settled) return;
        let state: string | null;
        try {
          state = xs.read(`${offerPath}/state`);
        } catch (err) {
          return fail(err);
        }
        if (state === null) return fail(new SetupError('the offer was withdrawn before the server answered'));
        if (state === 'offered') return;
        if (state.startsWith('refused:')) return fail(new SetupError(`domain ${domid} refused the channel (${state.slice(8, 300)})`));
        const accepted = /^accepted:([1-9][0-9]{0,4})$/.exec(state);
        const ephemeral = accepted ? Number(accepted[1]) : 0;
        if (!accepted || ephemeral > 65535) return fail(new ProtocolError('malformed', `offer state ${JSON.stringify(state.slice(0, 40))}`));
        try {
          Channel.attach(memory, offset, { capacityA, capacityB }, 'initiator'); // the header is still sound
        } catch (err) {
          return fail(err);
        }
        settled = true;
        cleanup();
        end = new XenChannelEnd({ channel, size, slotSize, port: evPort, domid, ownAlive: alive.initiator, peerAlive: alive.acceptor });
        end.connection = { port: ephemeral, route };
        // A server that accepted and already closed (or never mapped) reads as a peer that left:
        // the end reports it on its first wake, with whatever the server sent still readable.
        const established = end;
        if (!established.peerAlive) queueMicrotask(() => established.wake());
        resolve(end);
      };

      xs.writeAll(offerEntries(offerPath, self, domid, { capacityA, capacityB, size, eventPort: evPort, grefs, route }));
      offered = true;
      unwatch = watch(`${offerPath}/state`, onState);
      timer = setTimeout(() => fail(new SetupError(`set-up not finished within ${limits.setupTimeoutMs} ms`)), limits.setupTimeoutMs);
    } catch (err) {
      fail(err);
    }
  });
}
