// The addresses and ports a ring connection shows, computed the way Linux computes them for a
// loopback TCP connection (measured on this project's machines; the differential tests check it):
//
// - connecting to 0.0.0.0 or :: reaches 127.0.0.1 or ::1;
// - the client's source address is 127.0.0.1 for any 127.x.y.z target, and the target itself for
//   ::1 and for the addresses of the machine's own interfaces;
// - a dual-stack IPv6 socket (bound to '::' or to '::ffff:…') sees IPv4 peers as '::ffff:a.b.c.d',
//   family 'IPv6';
// - every connection has an ephemeral port from ip_local_port_range, the same number at both
//   ends; connect() takes even ports first (Linux has preferred them for connect() since 4.6,
//   leaving odd ones to bind()), odd ones when the even are taken.

import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import { isLocalHost } from '../switch/policy.js';

export interface SocketAddress { address: string; family: string; port: number }

/** What each end of a connection reports: its own address and its peer's. */
export interface ConnectionView { local: SocketAddress; remote: SocketAddress }

/** Where a client connection goes: the address it reaches and the one it comes from, as the client
 *  sees them (set-up carries both to the server). */
export interface Route { target: string; source: string }

// Only for IP literals (routes are checked before use): a colon is IPv6, and the test is far
// cheaper than net.isIPv6's expression, on every connection's set-up at both ends.
const familyOf = (address: string) => (address.includes(':') ? 'IPv6' : 'IPv4');
const V4_MAPPED = '::ffff:';

/** The address a connect() to `host` (a local IP literal) actually reaches. */
export function effectiveTarget(host: string): string {
  if (host === '0.0.0.0') return '127.0.0.1';
  if (host === '::') return '::1';
  return host;
}

/** The route of a connection to the local address `host`. */
export function routeTo(host: string): Route {
  const target = effectiveTarget(host);
  if (target.startsWith(V4_MAPPED) && net.isIPv4(target.slice(V4_MAPPED.length))) {
    return { target, source: V4_MAPPED + sourceOf(target.slice(V4_MAPPED.length)) };
  }
  return { target, source: sourceOf(target) };
}

/** The route of a connection to `host`, an address of this namespace or of a neighbour (another
 *  container's, another Xen domain's): from our address on the network they share — the source
 *  the kernel would pick for a directly connected peer — or null when no interface of ours is on
 *  its network. */
export function routeToward(host: string): Route | null {
  if (isLocalHost(host)) return routeTo(host);
  const source = sourceOnSubnetOf(host);
  return source === null ? null : { target: host, source };
}

function sourceOnSubnetOf(target: string): string | null {
  const family = net.isIP(target);
  if (family === 0) return null;
  const bits = (address: string): bigint => {
    if (family === 4) return address.split('.').reduce((n, part) => (n << 8n) | BigInt(Number(part)), 0n);
    const [head, tail = ''] = address.split('::');
    const groups = (s: string) => (s ? s.split(':') : []);
    const h = groups(head), t = groups(tail);
    const all = [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
    return all.reduce((n, g) => (n << 16n) | BigInt(parseInt(g, 16) || 0), 0n);
  };
  const t = bits(target);
  for (const addresses of Object.values(os.networkInterfaces())) {
    for (const a of addresses ?? []) {
      if (a.internal || (family === 4 ? a.family !== 'IPv4' : a.family !== 'IPv6')) continue;
      const mask = bits(a.netmask);
      if ((bits(a.address) & mask) === (t & mask)) return a.address;
    }
  }
  return null;
}

function sourceOf(target: string): string {
  return net.isIPv4(target) && target.startsWith('127.') ? '127.0.0.1' : target;
}

/** The client end's view of a connection along `route` to `port`. */
/** An address as net gives it: { address, family, port }, in that order. */
function socketAddress(address: string, port: number): SocketAddress {
  return { address, family: familyOf(address), port };
}

export function clientView(route: Route, port: number, ephemeralPort: number): ConnectionView {
  return { local: socketAddress(route.source, ephemeralPort), remote: socketAddress(route.target, port) };
}

/** The server end's view: its listener is bound to `bound` (an address of the family it was
 *  bound with) on `port`. */
export function serverView(bound: SocketAddress, route: Route, ephemeralPort: number): ConnectionView {
  const dualStack = bound.family === 'IPv6';
  const seen = (address: string) => (dualStack && net.isIPv4(address) ? V4_MAPPED + address : address);
  return { local: socketAddress(seen(route.target), bound.port), remote: socketAddress(seen(route.source), ephemeralPort) };
}

/** Whether a listener bound to `bound` accepts a TCP connection to the local address `host`: a ring
 *  must not reach a server that TCP could not. */
export function servesHost(bound: string, host: string): boolean {
  const target = effectiveTarget(host);
  if (bound === '::' || bound === '') return true; // dual stack (ipv6Only listeners are not registered)
  if (bound === '0.0.0.0') return net.isIPv4(target) || mappedV4(target) !== null;
  const plain = (a: string) => mappedV4(a) ?? a;
  return plain(bound) === plain(target);
}

function mappedV4(address: string): string | null {
  if (!address.startsWith(V4_MAPPED)) return null;
  const v4 = address.slice(V4_MAPPED.length);
  return net.isIPv4(v4) ? v4 : null;
}

// ---- ephemeral ports ---------------------------------------------------------------------------

/** Linux's defaults, where /proc cannot tell. */
const DEFAULT_RANGE: [number, number] = [32768, 60999];
/** A released port is not handed out again for this long. TIME_WAIT lasts 60 s, but Linux reuses
 *  a loopback connection's TIME_WAIT port for a new connect after tcp_tw_reuse_delay (1 s; the
 *  default tcp_tw_reuse=2 allows it on loopback), so a busy loopback client is not held to its
 *  range per minute; neither is a ring client. */
const QUARANTINE_MS = 1000;

let range: [number, number] | null = null;
const FREE = 0, LIVE = 1, RESTING = 2;

/** The kernel's ephemeral port range (/proc/sys/net/ipv4/ip_local_port_range), read once. */
export function ephemeralRange(): [number, number] {
  if (range) return range;
  try {
    const [low, high] = fs.readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
    range = Number.isInteger(low) && Number.isInteger(high) && low >= 1 && low < high && high <= 65535 ? [low, high] : DEFAULT_RANGE;
  } catch {
    range = DEFAULT_RANGE;
  }
  return range;
}

/**
 * The ephemeral ports of one listener's ring connections. Ports are unique among the listener's
 * live connections, which makes every connection's address pair unique, as TCP guarantees (a
 * kernel reuses an ephemeral port for connections to different destinations, and so does this);
 * a released port rests for QUARANTINE_MS first, as a closed loopback TCP connection's does in
 * TIME_WAIT. Like Linux's connect(), even ports first, odd ones once the even are taken.
 */
export class EphemeralPorts {
  /** Each port's state (FREE, LIVE or RESTING): a byte per port, read on every connect. */
  readonly #state = new Uint8Array(65536);
  /** Resting ports in release order, and when each was released (ms): a queue from #head. */
  #restPorts: number[] = [];
  #restAt: number[] = [];
  #head = 0;
  #live = 0;
  /** Where each parity's search goes on from (an index into its ports), and how many of its ports
   *  are live or resting. The search sweeps the range in order from a random start, so after a
   *  burst the ports just ahead are the free ones (ports come back in about the order they went):
   *  a connect looks at one or two ports, not at thousands of resting ones. */
  readonly #cursor = [-1, -1];
  readonly #used = [0, 0];

  /** A free port; throws EADDRNOTAVAIL when there is none (as connect() fails then). */
  allocate(): number {
    const [low, high] = ephemeralRange();
    this.#wakeRested(Date.now());
    const evenLow = low + (low & 1);
    const port = this.#search(0, evenLow, Math.floor((high - evenLow) / 2) + 1);
    if (port !== 0) return port;
    const oddLow = low + 1 - (low & 1);
    const odd = this.#search(1, oddLow, Math.floor((high - oddLow) / 2) + 1);
    if (odd !== 0) return odd;
    throw Object.assign(new Error('connect EADDRNOTAVAIL: no ephemeral port left for ring connections to this listener'), { code: 'EADDRNOTAVAIL', syscall: 'connect' });
  }

  /** Frees the ports that have rested QUARANTINE_MS by `now`. */
  #wakeRested(now: number): void {
    let head = this.#head;
    const ports = this.#restPorts, at = this.#restAt;
    while (head < ports.length && now - at[head] >= QUARANTINE_MS) {
      const port = ports[head++];
      this.#state[port] = FREE;
      this.#used[port & 1]--;
    }
    if (head > 4096 && head * 2 > ports.length) { // drop the spent front now and then
      this.#restPorts = ports.slice(head);
      this.#restAt = at.slice(head);
      head = 0;
    }
    this.#head = head;
  }

  /** The next free port of `parity` (its ports: `first`, first + 2, …, `count` of them), or 0. */
  #search(parity: number, first: number, count: number): number {
    if (this.#used[parity] >= count) return 0;
    if (this.#cursor[parity] < 0) this.#cursor[parity] = Math.floor(Math.random() * count);
    const state = this.#state;
    for (let i = 0, index = this.#cursor[parity]; i < count; i++, index = index + 1 === count ? 0 : index + 1) {
      const port = first + 2 * index;
      if (state[port] !== FREE) continue;
      this.#cursor[parity] = index + 1 === count ? 0 : index + 1;
      state[port] = LIVE;
      this.#live++;
      this.#used[parity]++;
      return port;
    }
    return 0;
  }

  release(port: number): void {
    if (this.#state[port] !== LIVE) return;
    this.#state[port] = RESTING; // still used until it has rested
    this.#live--;
    this.#restPorts.push(port);
    this.#restAt.push(Date.now());
  }

  get size(): number {
    return this.#live;
  }

  /** Ports neither live nor resting, of the whole range (an estimate: resting ones are counted
   *  until the next allocate() lets them go). */
  get free(): number {
    const [low, high] = ephemeralRange();
    return high - low + 1 - this.#live - (this.#restPorts.length - this.#head);
  }
}
