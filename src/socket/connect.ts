// The XWAY switch for one connection. `xway.connect` / `createConnection` (net.connect's overloads)
// and the xway/register preload (net.Socket.prototype.connect) both come here: when the target is
// this machine (or a Xen domain of it) and an xway endpoint serves it, the socket rides a ring;
// otherwise — and whenever ring set-up fails — it is plain TCP, made by net itself. Nothing is
// ever sent into a TCP stream to decide this.
//
// A ring connect goes through the steps a TCP connect shows a program: the host name lookup (with
// net's 'lookup' events and options), 'connectionAttempt', then 'connect' — so a program sees the
// same events, addresses and errors whichever transport carries it.

import dns from 'node:dns';
import fs from 'node:fs';
import net from 'node:net';
import { acceptedWithin, connectHost, linkListens, openNow, readyLink } from '../platform/host/connect.js';
import { DEFAULT_CAPACITY, DEFAULT_SETUP_TIMEOUT_MS } from '../platform/host/limits.js';
import { isValidCapacity } from '../ring/layout.js';
import { connectXen, lookupXenEndpoint, xenPeerFor } from '../platform/xen/connect.js';
import { xenUnavailableReason } from '../platform/xen/native.js';
import { hostUnavailableReason } from '../platform/host/native.js';
import { lookupEndpoint, recentEntry, type RegistryEntry } from '../switch/registry.js';
import { isLocalHost, transportPolicy, type TransportPolicy } from '../switch/policy.js';
import { XwayError } from '../errors.js';
import type { ChannelEnd } from '../platform/types.js';
import { RingSocket } from './ring-socket.js';
import { clientView, routeToward, servesHost, type Route } from './identity.js';
import { fallBackToTcp } from './fallback.js';
import { markTcp } from './tcp.js';
import { debug, debugOn, hostPort } from '../switch/debug.js';
import { noteFallback, publishChannel } from '../stat/publish.js';
import { LinkChannelEnd } from '../platform/common/link.js';
import { hasNeighbours } from '../switch/neighbours.js';
import { serverRefusal } from '../switch/sharing.js';
import { ownNamespaces } from '../switch/namespace.js';

export interface XwayConnectOptions extends net.TcpNetConnectOpts {
  /** 'off': TCP only; 'auto' (default, or XWAY): ring when possible; 'force': ring or an error. */
  transport?: 'off' | 'auto' | 'force';
  /** Capacity of each of this connection's rings (power of two, 4 KiB to 16 MiB). */
  ringCapacity?: number;
}

export type XwayConnection = net.Socket | RingSocket;

type Listener = () => void;
type Normalized = [XwayConnectOptions & net.IpcNetConnectOpts & { onread?: unknown }, Listener | null];

/** net's own argument normalisation, so every overload means what it means to net. */
export const normalizeArgs = (net as unknown as { _normalizeArgs(args: unknown[]): Normalized })._normalizeArgs;

export class NoRingError extends XwayError {
  constructor(message: string) {
    super('ERR_XWAY_NO_RING', message);
  }
}

/** Where a ring connection would go: a host endpoint, or a Xen domain's. */
type Plan =
  /** `entry` null: a name to resolve first, then to look up (a neighbour's, by its address). */
  | { kind: 'host'; entry: RegistryEntry | null; host: string; port: number }
  | { kind: 'xen'; domid: number; host: string; port: number }
  | { kind: 'tcp'; why: string };

/** Decides synchronously, from the registry, whether a connect to `options` may ride a ring. */
export function planConnection(options: Normalized[0]): Plan {
  const tcp = (why: string): Plan => ({ kind: 'tcp', why });
  if (options.path != null) return tcp('a Unix socket');
  const port = Number(options.port);
  if (!Number.isInteger(port) || port <= 0 || port > 65535) return tcp('no valid port'); // net reports the error
  if (options.localAddress != null || options.localPort != null) return tcp('localAddress/localPort asked for');
  if (options.onread != null) return tcp('the onread option');
  const host = options.host || 'localhost';
  const literal = net.isIP(host) !== 0;
  if (!isLocalHost(host)) {
    // Another Xen domain of this machine, if the administrator recorded its address.
    const xen = xenEndpointFor(host, port);
    if (xen !== null) return { kind: 'xen', domid: xen, host, port };
    // A server of another network namespace sharing our registry (a neighbouring container), at
    // an address or at a name (a Compose service name) that resolves to one.
    const problems: string[] = [];
    if (hostUnavailableReason() === null) {
      try {
        if (!literal && hasNeighbours()) return { kind: 'host', entry: null, host, port };
        const entry = literal ? lookupEndpoint(port, host, problems) : null;
        if (entry) return { kind: 'host', entry, host, port };
      } catch { /* an unusable registry: TCP still works */ }
    }
    if (problems.length) return tcp(problems.join('; '));
    return tcp(`${host} is not an address of this machine${xenUnavailableReason() === null ? ' nor of a Xen domain with an xway endpoint' : ''}, nor of a neighbour with an xway endpoint registered for port ${port}`);
  }
  const unavailable = hostUnavailableReason();
  if (unavailable !== null) return tcp(unavailable);
  let entry: RegistryEntry | null;
  const problems: string[] = [];
  // A server found live in the last second, whose thread our link says still listens on the port.
  const recent = recentEntry(port, literal ? host : undefined, entryListens);
  if (recent) return { kind: 'host', entry: recent, host, port };
  try {
    entry = lookupEndpoint(port, literal ? host : undefined, problems);
  } catch (err) {
    return tcp((err as Error).message); // an unusable registry: TCP still works
  }
  if (!entry) return tcp(problems.length ? problems.join('; ') : `no xway endpoint is registered for port ${port}`);
  return { kind: 'host', entry, host, port };
}

function entryListens(entry: RegistryEntry, port: number): boolean {
  return linkListens(entry.controlPath, port);
}

/** xway.connect: net.connect's overloads, ring or TCP. */
export function connect(...args: unknown[]): XwayConnection {
  const normalized = normalizeArgs(args);
  const [options, listener] = normalized;
  const policy = transportPolicy(options.transport);
  const plan = policy === 'off' ? ({ kind: 'tcp', why: 'transport is off' } as const) : planConnection(options);
  if (plan.kind === 'tcp') {
    if (debugOn) debug(`connect ${hostPort(options.host || 'localhost', options.port)} -> tcp (${plan.why})`);
    if (policy !== 'force') return markTcp(net.connect(withoutXwayOptions(options), listener ?? undefined));
    const socket = new RingSocket(options);
    process.nextTick(() => socket.destroy(new NoRingError(`xway transport forced, but ${plan.why}`)));
    return socket;
  }
  const socket = new RingSocket(options);
  if (options.timeout) socket.setTimeout(options.timeout);
  startRing(socket, options, listener, plan, policy);
  return socket;
}

/**
 * For the preload: `socket` — a net.Socket the program made (of no subclass) or a fresh RingSocket,
 * not yet connecting — rides a ring when `plan` allows; returns false when it must be connected
 * over TCP instead (by the caller, with net's own connect).
 */
export function connectInPlace(socket: net.Socket, options: Normalized[0], listener: Listener | null, plan: Plan): boolean {
  if (plan.kind === 'tcp') {
    if (debugOn) debug(`connect ${hostPort(options.host || 'localhost', options.port)} -> tcp (${plan.why})`);
    return false;
  }
  const proto = Object.getPrototypeOf(socket);
  if (proto !== net.Socket.prototype && proto !== RingSocket.prototype) return false;
  const ring = socket instanceof RingSocket ? socket.renew() : RingSocket.adopt(socket);
  if (ring.destroyed) (ring as unknown as { _undestroy(): void })._undestroy(); // as net's connect() does
  startRing(ring, options, listener, plan, 'auto');
  return true;
}

/** A closed RingSocket that connects again over TCP: a plain net.Socket first, for net. */
export function plainAgain(socket: net.Socket): void {
  if (socket instanceof RingSocket) Object.setPrototypeOf(socket, net.Socket.prototype);
}

/** Runs a ring connect on `socket` the way net runs a TCP connect. */
function startRing(socket: RingSocket, options: XwayConnectOptions, listener: Listener | null, plan: Exclude<Plan, { kind: 'tcp' }>, policy: TransportPolicy): void {
  if (listener) socket.once('connect', listener);
  socket.beginSetUp();
  const run = new RingConnect(socket, options, plan, policy);
  const host = plan.host;
  const family = net.isIP(host);
  if (family !== 0) {
    process.nextTick(attemptLiteral, run, host, family); // net too connects an IP literal on the next tick
    return;
  }
  if (plan.kind !== 'host') return run.tcp();
  resolveLikeNet(socket, options, host, (result) => {
    if (!socket.connecting) return;
    // A neighbour's name: which server (if any) is at the address it resolves to.
    if (!result.error && plan.entry === null) {
      try {
        plan.entry = lookupEndpoint(plan.port, result.addresses[0].address);
      } catch { /* an unusable registry */ }
    }
    if (result.error || plan.entry === null || !servesHost(plan.entry.host, result.addresses[0].address)) {
      run.tcp(result.replay); // net looks it up again (from our answer) and reports what it reports
      return;
    }
    result.announce();
    const first = result.addresses[0];
    run.attempt(first.address, first.family);
  });
}

function attemptLiteral(run: RingConnect, address: string, family: number): void {
  run.attempt(address, family);
}

/** One ring connect in progress: what its steps share, in one object rather than a closure per
 *  step (a burst of connects allocates for each of them). */
class RingConnect {
  readonly socket: RingSocket;
  readonly options: XwayConnectOptions;
  readonly plan: Exclude<Plan, { kind: 'tcp' }>;
  readonly policy: TransportPolicy;
  route: Route | null = null;
  end: ChannelEnd | null = null;

  constructor(socket: RingSocket, options: XwayConnectOptions, plan: Exclude<Plan, { kind: 'tcp' }>, policy: TransportPolicy) {
    this.socket = socket;
    this.options = options;
    this.plan = plan;
    this.policy = policy;
  }

  get entry(): RegistryEntry | null {
    return this.plan.kind === 'host' ? this.plan.entry : null;
  }

  tcp(lookup?: XwayConnectOptions['lookup'], why = 'the name resolves to an address no ring endpoint serves', note = false): void {
    const { plan, options } = this;
    debug(`connect ${hostPort(plan.host, plan.port)} -> tcp (${why})`);
    if (note) noteFallback(`connect to ${hostPort(plan.host, plan.port)}: ${why}`);
    if (this.policy === 'force') this.socket.destroy(new NoRingError(`xway transport forced, but ${why}`));
    else fallBackToTcp(this.socket, lookup ? { ...withoutXwayOptions(options), lookup } : withoutXwayOptions(options));
  }

  attempt(address: string, family: number): void {
    const { socket, plan, options } = this;
    if (!socket.connecting) return; // destroyed meanwhile
    socket.emit('connectionAttempt', address, plan.port, family);
    // A Xen domain's address may be on no network of ours (the administrator recorded it): the
    // source is then unknown, as for an unbound socket.
    const route = routeToward(address) ?? (plan.kind === 'xen' ? { target: address, source: net.isIPv6(address) ? '::' : '0.0.0.0' } : null);
    if (route === null) {
      this.tcp(undefined, `no interface of this namespace is on the network of ${address}`);
      return;
    }
    this.route = route;
    const entry = this.entry;
    let started: Promise<ChannelEnd>;
    try {
      if (plan.kind === 'xen') {
        started = connectXen(plan.domid, plan.port, { capacity: options.ringCapacity, route });
      } else {
        // On a link already up, the connection opens now: a burst of connects makes no promise,
        // await or microtask each where the server granted ports (the common case).
        const capacity = options.ringCapacity ?? entry!.ringCapacity ?? DEFAULT_CAPACITY;
        const link = isValidCapacity(capacity) ? readyLink(entry!.controlPath) : null;
        if (link !== null) {
          const now = openNow(link, plan.port, capacity, route);
          socket.prepare(now.end);
          if (now.accepted === null) return this.#opened(now.end);
          started = acceptedWithin(now, DEFAULT_SETUP_TIMEOUT_MS);
        } else {
          started = connectHost(entry!.controlPath, {
            capacity: options.ringCapacity ?? entry!.ringCapacity, sameProcess: entry!.pid === process.pid && entry!.pidns === ownNamespaces().pidns,
            route, port: plan.port, place: ownNamespaces(),
            trustPeer: (cred) => serverRefusal(cred, socketOwner(entry!.controlPath)),
            onLaidOut: (end) => socket.prepare(end),
          });
        }
      }
    } catch (err) {
      started = Promise.reject(err);
    }
    started.then((end) => this.#opened(end), (err: Error) => this.#failed(err));
  }

  #opened(end: ChannelEnd): void {
    const socket = this.socket;
    if (!socket.connecting || socket.destroyed) {
      end.close();
      return;
    }
    this.end = end;
    if (!(end instanceof LinkChannelEnd && end.early)) return this.connected();
    // Connected without the server's answer, as a TCP connect completes in the kernel: 'connect'
    // comes at the loop's next turn (net's comes from the next poll), and the server is woken
    // once, after it, for the OPEN and whatever the program wrote on 'connect'.
    setImmediate(connectEarly, this, end);
  }

  connected(): void {
    const { socket, plan, route } = this;
    const end = this.end!, entry = this.entry;
    if (debugOn) debug(`connect ${hostPort(plan.host, plan.port)} -> ring (${end.platform} channel, server ${entry === null ? `domain ${(plan as { domid: number }).domid}` : `pid ${entry.pid}${entry.netns !== ownNamespaces().netns ? ` in ${entry.container}` : ''}`}${end instanceof LinkChannelEnd && end.early ? ', at once' : ''})`);
    socket.attach(end, clientView(route!, plan.port, end.connection?.port ?? 0));
    if (entry !== null && entry.netns !== ownNamespaces().netns) publishClientSide(socket, end, entry, plan.port);
  }

  #failed(err: Error): void {
    const socket = this.socket;
    if (socket.destroyed || !socket.connecting) return;
    if (this.policy === 'force') socket.destroy(new NoRingError(`xway transport forced, but ring set-up failed: ${err.message}`));
    else this.tcp(undefined, `ring set-up failed: ${err.message}`, true);
  }
}

function connectEarly(run: RingConnect, end: LinkChannelEnd): void {
  const socket = run.socket;
  if (!socket.connecting || socket.destroyed) return; // destroy() closed the end
  end.holdPeer();
  try {
    run.connected();
  } finally {
    end.releasePeer();
  }
}

interface Resolved {
  error: NodeJS.ErrnoException | null;
  /** The addresses in the order net would try them. */
  addresses: dns.LookupAddress[];
  /** Emits the 'lookup' events net emits for this answer. */
  announce(): void;
  /** A lookup function that gives net this same answer. */
  replay: NonNullable<XwayConnectOptions['lookup']>;
}

/** Looks `host` up as net's lookupAndConnect does (same lookup function, family, hints and
 *  happy-eyeballs ordering), for a ring connect that must reach the address TCP would. */
function resolveLikeNet(socket: net.Socket, options: XwayConnectOptions, host: string, done: (r: Resolved) => void): void {
  const familyOption = options.family === 4 || options.family === 6 ? options.family : 0;
  const dnsopts: dns.LookupOptions = { family: familyOption, hints: options.hints || 0 };
  if (familyOption === 0 && dnsopts.hints === 0) dnsopts.hints = dns.ADDRCONFIG;
  const autoSelect = familyOption === 0 && (options.autoSelectFamily ?? net.getDefaultAutoSelectFamily());
  const lookup = (options.lookup ?? dns.lookup) as (h: string, o: dns.LookupOptions, cb: (...a: unknown[]) => void) => void;
  (socket as unknown as { _host: string })._host = host;
  lookup(host, { ...dnsopts, all: autoSelect }, (err: unknown, a: unknown, f: unknown) => {
    const error = (err as NodeJS.ErrnoException | null) ?? null;
    const raw: dns.LookupAddress[] = error ? [] : autoSelect ? (a as dns.LookupAddress[]) : [{ address: a as string, family: f as number }];
    const valid = raw.filter((x) => net.isIP(x.address) && (x.family === 4 || x.family === 6));
    // net alternates families, starting with the first address's.
    const first = valid[0]?.family;
    const same = valid.filter((x) => x.family === first), other = valid.filter((x) => x.family !== first);
    const ordered: dns.LookupAddress[] = [];
    for (let i = 0; i < Math.max(same.length, other.length); i++) {
      if (same[i]) ordered.push(same[i]);
      if (other[i]) ordered.push(other[i]);
    }
    const replay = ((_h: string, o: dns.LookupOptions, cb: (...args: unknown[]) => void) => {
      process.nextTick(() => (o.all ? cb(error, raw) : cb(error, raw[0]?.address, raw[0]?.family)));
    }) as unknown as Resolved['replay'];
    done({
      error: error ?? (ordered.length === 0 ? Object.assign(new Error('no usable address'), { code: 'ENOTFOUND' }) : null),
      addresses: ordered,
      replay,
      announce() {
        for (const x of raw) socket.emit('lookup', null, x.address, x.family, host);
        if (ordered.length > 1) (socket as unknown as { autoSelectFamilyAttemptedAddresses: string[] }).autoSelectFamilyAttemptedAddresses = [`${ordered[0].address}:${options.port}`];
      },
    });
  });
}

function socketOwner(file: string): number {
  try {
    return fs.lstatSync(file).uid;
  } catch {
    return -1; // gone: nobody is trusted on it
  }
}

/** A client's end of a connection to another namespace, listed for observers of this one (the
 *  server's table is in its own PID namespace, where our observers cannot read its descriptors). */
function publishClientSide(socket: RingSocket, end: ChannelEnd, entry: RegistryEntry, port: number): void {
  const where = end instanceof LinkChannelEnd ? end.location() : null;
  if (where === null) return;
  const unpublish = publishChannel({
    port, clientPid: process.pid, segmentFd: where.fd, fileOffset: where.fileOffset, size: end.channel.byteLength,
    capacityA: end.channel.capacityA, capacityB: end.channel.capacityB, clientPlace: ownNamespaces(),
    server: { pid: entry.pid, netns: entry.netns, container: entry.container },
  });
  socket.once('close', unpublish);
}

/** The Xen domain serving `host`:`port`, or null (no Xen, no record, no endpoint). */
function xenEndpointFor(host: string, port: number): number | null {
  if (xenUnavailableReason() !== null || !net.isIP(host)) return null;
  try {
    const domid = xenPeerFor(host);
    return domid !== null && lookupXenEndpoint(domid, port) ? domid : null;
  } catch {
    return null; // an unreadable record: TCP still works
  }
}

function withoutXwayOptions(options: XwayConnectOptions): net.TcpNetConnectOpts {
  const { transport: _transport, ringCapacity: _ringCapacity, ...rest } = options;
  return rest;
}
