// xway.connect / createConnection: the XWAY switch for one connection. With the same overloads as
// net.connect, it takes a ring when the host is this machine and the registry has a live endpoint
// for the port, and plain TCP otherwise — or, when ring set-up fails for any reason, TCP after all
// (unless transport is 'force', which fails with a clear error instead). Nothing is ever sent
// into a TCP stream to decide this.

import net from 'node:net';
import { connectHost } from '../platform/host/connect.js';
import { connectXen, lookupXenEndpoint, xenPeerFor } from '../platform/xen/connect.js';
import { xenUnavailableReason } from '../platform/xen/native.js';
import { hostUnavailableReason } from '../platform/host/native.js';
import { lookupEndpoint, type RegistryEntry } from '../switch/registry.js';
import { isLocalHost, servesHost, transportPolicy, type TransportPolicy } from '../switch/policy.js';
import { XwayError } from '../errors.js';
import { RingSocket, type RingSocketOptions } from './ring-socket.js';
import type { ChannelEnd } from '../platform/types.js';
import { markTcp } from './tcp.js';

export interface XwayConnectOptions extends net.TcpNetConnectOpts {
  /** 'off': TCP only; 'auto' (default, or XWAY): ring when possible; 'force': ring or an error. */
  transport?: 'off' | 'auto' | 'force';
  /** Capacity of each of this connection's rings (power of two, 4 KiB to 16 MiB). */
  ringCapacity?: number;
}

export type XwayConnection = net.Socket | RingSocket;

type Listener = () => void;

/** net.connect's overloads: (port[, host][, listener]), (options[, listener]), (path[, listener]). */
function normalize(args: unknown[]): [XwayConnectOptions | net.IpcNetConnectOpts, Listener | undefined] {
  const last = args[args.length - 1];
  const listener = typeof last === 'function' ? (last as Listener) : undefined;
  const [first, second] = args;
  if (first !== null && typeof first === 'object') return [first as XwayConnectOptions, listener];
  if (typeof first === 'string' && !/^\d+$/.test(first)) return [{ path: first }, listener];
  return [{ port: Number(first), host: typeof second === 'string' ? second : undefined }, listener];
}


export class NoRingError extends XwayError {
  constructor(message: string) {
    super('ERR_XWAY_NO_RING', message);
  }
}

export function connect(...args: unknown[]): XwayConnection {
  const [options, listener] = normalize(args);
  if ('path' in options && options.path !== undefined) return markTcp(net.connect(options, listener));
  const tcpOptions = options as XwayConnectOptions;
  const policy = transportPolicy(tcpOptions.transport);
  const host = tcpOptions.host ?? 'localhost';
  const port = tcpOptions.port;

  let why: string | null = null;
  if (policy === 'off') why = 'transport is off';
  else if (!isLocalHost(host)) {
    // Another Xen domain of this machine, if the administrator recorded the address for one.
    const xen = xenEndpointFor(host, port);
    if (xen) return connectOverXen(xen, tcpOptions, policy, listener);
    why = `${host} is not an address of this machine${xenUnavailableReason() === null ? ' nor of a Xen domain with an xway endpoint' : ''}`;
  } else why = hostUnavailableReason();
  let entry: RegistryEntry | null = null;
  if (why === null) {
    try {
      entry = lookupEndpoint(port);
      if (!entry) why = `no xway endpoint is registered for port ${port}`;
      else if (!servesHost(entry.host, host)) {
        why = `the endpoint for port ${port} listens on ${entry.host}, not ${host}`;
        entry = null;
      }
    } catch (err) {
      why = (err as Error).message; // an unusable registry: TCP still works
    }
  }

  if (!entry) {
    if (policy !== 'force') return markTcp(net.connect(tcpOptions, listener));
    const socket = RingSocket.connecting({});
    process.nextTick(() => socket.destroy(new NoRingError(`xway transport forced, but ${why}`)));
    return socket;
  }

  const family = net.isIPv6(host) ? 'IPv6' : 'IPv4';
  const view = {
    remote: { address: net.isIP(host) ? host : family === 'IPv6' ? '::1' : '127.0.0.1', port, family },
    local: { address: family === 'IPv6' ? '::1' : '127.0.0.1', port: 0, family },
  };
  // A server in this very process (another worker thread, or this one) gets a thread channel:
  // one shared memory and Atomics, no descriptor or system call on the data path.
  const sameProcess = entry.pid === process.pid;
  const capacity = tcpOptions.ringCapacity ?? entry.ringCapacity;
  return ringConnection(tcpOptions, policy, listener, view, 'ring set-up', () => connectHost(entry.controlPath, { capacity, sameProcess }));
}

/** A RingSocket, connecting while `setUp()` makes its channel end: net's listener, timeout and
 *  AbortSignal apply as to a TCP connect; when set-up fails, TCP after all (or, forced, an error). */
function ringConnection(
  options: XwayConnectOptions, policy: TransportPolicy, listener: Listener | undefined,
  view: Pick<RingSocketOptions, 'local' | 'remote'>, what: string, setUp: () => Promise<ChannelEnd>,
): RingSocket {
  const socket = RingSocket.connecting({ allowHalfOpen: options.allowHalfOpen, ...view });
  if (listener) socket.once('connect', listener);
  if (options.timeout) socket.setTimeout(options.timeout);
  const signal = (options as { signal?: AbortSignal }).signal;
  if (signal) {
    if (signal.aborted) process.nextTick(() => socket.destroy(abortError(signal)));
    else signal.addEventListener('abort', () => socket.destroy(abortError(signal)), { once: true });
  }
  setUp().then(
    (end) => {
      if (socket.destroyed) end.close();
      else socket.attach(end);
    },
    (err: Error) => {
      if (socket.destroyed) return;
      if (policy === 'force') socket.destroy(new NoRingError(`xway transport forced, but ${what} failed: ${err.message}`));
      else socket.fallBackTo(markTcp(net.connect({ ...options, transport: undefined } as net.TcpNetConnectOpts)));
    },
  );
  return socket;
}

/** The Xen domain and endpoint serving `host`:`port`, or null (no Xen, no record, no endpoint). */
function xenEndpointFor(host: string, port: number): { domid: number } | null {
  if (xenUnavailableReason() !== null || !net.isIP(host)) return null;
  try {
    const domid = xenPeerFor(host);
    return domid !== null && lookupXenEndpoint(domid, port) ? { domid } : null;
  } catch {
    return null; // an unreadable record: TCP still works
  }
}

function connectOverXen(xen: { domid: number }, options: XwayConnectOptions, policy: 'auto' | 'force', listener: Listener | undefined): RingSocket {
  const family = net.isIPv6(options.host!) ? 'IPv6' : 'IPv4';
  const view = {
    remote: { address: options.host!, port: options.port, family },
    local: { address: family === 'IPv6' ? '::' : '0.0.0.0', port: 0, family },
  };
  return ringConnection(options, policy, listener, view, 'Xen channel set-up', () => connectXen(xen.domid, options.port, { capacity: options.ringCapacity }));
}

function abortError(signal: AbortSignal): Error {
  return Object.assign(new Error('The operation was aborted', { cause: signal.reason }), { code: 'ABORT_ERR', name: 'AbortError' });
}
