// The client half of the preload: net.Socket.prototype.connect and tls.connect.
//
// Every TCP client in Node ends in net.Socket.prototype.connect — net.connect/createConnection,
// `new net.Socket().connect()`, http.Agent (its createConnection is net.createConnection), undici
// and global fetch for http:, http2.connect for http: — so patching it covers them all: when the
// target is this machine and the registry has a live endpoint for the port, the socket the program
// holds rides a RingSocket (adopt.ts). TLS is different: tls.connect() builds a TLSSocket whose
// libuv handle does the encryption over a TCP handle, so a ring cannot be slipped under it after
// the fact; tls.connect itself is patched instead and, for a co-resident target, runs TLS over a
// RingSocket exactly as `tls.connect({ socket })` does (https.Agent, undici and fetch for
// https:, http2.connect for https: all call tls.connect by name at call time).

import fs from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';
import type { RegistryEntry } from '../switch/registry.js';
import type { RingSocket } from '../socket/ring-socket.js';
import { heavy, switchModules } from './lazy.js';
import { rideRing } from './adopt.js';
import { debug, debugOn, hostPort } from './debug.js';

type Options = net.TcpNetConnectOpts & net.IpcNetConnectOpts & { socket?: unknown; localAddress?: string; localPort?: number };
type Normalized = [Options, ((...a: unknown[]) => void) | null];

const normalizeArgs = (net as unknown as { _normalizeArgs(args: unknown[]): Normalized })._normalizeArgs;
let originalConnect: (this: net.Socket, ...args: unknown[]) => net.Socket;

/** A TCP connection made without the preload looking at it (the fallback after a failed set-up). */
function plainTcp(options: Options): net.Socket {
  const socket = new net.Socket();
  return originalConnect.call(socket, { ...options, socket: undefined });
}

/** A co-resident server: a host registry entry, or (xen) a Xen domain the administrator
 *  recorded for `host` that publishes an endpoint for `port`. */
interface Choice { entry: RegistryEntry | null; xen?: number; host: string; port: number }

/** The Xen domain serving `host`:`port`, or null. Only looked for where this is a Xen guest (or
 *  dom0) at all, so other programs' connects to other machines load nothing more. */
function xenChoice(host: string, port: number): number | null {
  if (!net.isIP(host) || !fs.existsSync('/dev/xen/evtchn')) return null;
  const h = heavy();
  if (h.xenUnavailableReason() !== null) return null;
  try {
    const domid = h.xenPeerFor(host);
    return domid !== null && h.lookupXenEndpoint(domid, port) ? domid : null;
  } catch {
    return null; // an unreadable record: TCP still works
  }
}

/** The registry entry this connection may ride, or null (then it is TCP, as without xway). */
function choose(options: Options, socket: net.Socket | null): Choice | null {
  if (options.path != null) return null; // Unix sockets: not ours
  const port = Number(options.port);
  const host = options.host ?? 'localhost';
  if (!Number.isInteger(port) || port <= 0 || port > 65535) return null; // net reports the error
  const { isLocalHost, lookupEndpoint, servesHost } = switchModules();
  const tcp = (why: string) => {
    debug(`connect ${hostPort(host, port)} -> tcp (${why})`);
    return null;
  };
  // A socket with a handle already: a TLSSocket that tls.connect() connects itself (after the
  // patched tls.connect decided on TCP), or one made from a file descriptor.
  if (socket && (socket as unknown as { _handle: unknown })._handle) return null;
  if (!isLocalHost(host)) {
    const xen = options.localAddress == null && options.localPort == null ? xenChoice(host, port) : null;
    if (xen !== null) return { entry: null, xen, host, port };
    return debugOn ? tcp(`${host} is not an address of this machine nor of a Xen domain with an xway endpoint`) : null;
  }
  if (options.localAddress != null || options.localPort != null) return tcp('localAddress/localPort asked for');
  let entry: RegistryEntry | null;
  try {
    entry = lookupEndpoint(port);
  } catch (err) {
    return tcp((err as Error).message);
  }
  if (!entry) return tcp(`no xway endpoint is registered for port ${port}`);
  if (!servesHost(entry.host, host)) return tcp(`the endpoint for port ${port} listens on ${entry.host}, not ${host}`);
  const unavailable = heavy().hostUnavailableReason();
  if (unavailable !== null) return tcp(unavailable);
  return { entry, host, port };
}

/** The TCP-level view of a ring connection to `host`. */
function clientView(choice: Choice) {
  const { host, entry, port } = choice;
  const v6 = net.isIPv6(host) || (!net.isIP(host) && entry?.host === '::1');
  const family = v6 ? 'IPv6' : 'IPv4';
  const loopback = v6 ? '::1' : '127.0.0.1';
  return {
    remote: { address: net.isIP(host) ? host : loopback, port, family },
    local: { address: choice.xen !== undefined ? (v6 ? '::' : '0.0.0.0') : loopback, port: 0, family },
  };
}

/** A RingSocket set up to `choice`, falling back to TCP by itself if set-up fails. */
function openRing(choice: Choice, options: Options): { ring: RingSocket; view: ReturnType<typeof clientView> } {
  const h = heavy();
  const view = clientView(choice);
  const ring = h.RingSocket.connecting({ allowHalfOpen: true, ...view });
  const where = hostPort(choice.host, choice.port);
  const { entry, xen } = choice;
  const setUp = entry ? h.connectHost(entry.controlPath, { capacity: entry.ringCapacity, sameProcess: entry.pid === process.pid })
    : h.connectXen(xen!, choice.port);
  setUp.then(
    (end) => {
      if (ring.destroyed) {
        end.close();
        return;
      }
      debug(`connect ${where} -> ring (${end.platform} channel, ${entry ? `server pid ${entry.pid}` : `server domain ${xen}`})`);
      ring.attach(end);
    },
    (err: Error) => {
      if (ring.destroyed) return;
      debug(`connect ${where} -> tcp (ring set-up failed: ${err.message})`);
      ring.fallBackTo(plainTcp(options));
    },
  );
  return { ring, view };
}

/** A TLSSocket over a RingSocket asks its (JS stream) handle for the addresses and gets nothing:
 *  net caches them in _peername/_sockname, so fill the cache with the TCP-level view. */
export function tcpView(socket: net.Socket, view: { local: object; remote: object }): void {
  Object.assign(socket, { _peername: view.remote, _sockname: view.local });
}

export function patchClient(): void {
  const proto = net.Socket.prototype as unknown as { connect: typeof originalConnect };
  originalConnect = proto.connect;
  proto.connect = function (this: net.Socket, ...args: unknown[]) {
    // net.connect() passes its already normalized arguments as one array.
    const normalized = Array.isArray(args[0]) ? (args[0] as unknown as Normalized) : normalizeArgs(args);
    const [options, cb] = normalized;
    const choice = this.destroyed || this.connecting ? null : choose(options, this);
    if (!choice) return originalConnect.apply(this, args);
    if (cb) this.once('connect', cb);
    const { ring, view } = openRing(choice, options);
    rideRing(this, ring, view);
    return this;
  };

  const tlsConnect = tls.connect as (...args: unknown[]) => tls.TLSSocket;
  (tls as { connect: unknown }).connect = function (...args: unknown[]) {
    // tls's own normalisation: net's, plus an options object after port/host merged in.
    const [options, cb] = normalizeArgs(args);
    if (args[1] !== null && typeof args[1] === 'object') Object.assign(options, args[1]);
    else if (args[2] !== null && typeof args[2] === 'object') Object.assign(options, args[2]);
    const choice = options.socket ? null : choose(options, null);
    if (!choice) return tlsConnect.apply(tls, args);
    const { ring, view } = openRing(choice, options);
    // The TLSSocket copies its allowHalfOpen from the socket it wraps; after that the ring must
    // not end its direction by itself on the server's FIN: the TLSSocket decides (as over TCP).
    ring.allowHalfOpen = !!options.allowHalfOpen;
    const socket = tlsConnect.call(tls, { ...options, socket: ring }, cb ?? undefined);
    ring.allowHalfOpen = true;
    tcpView(socket, view);
    if (options.timeout) socket.setTimeout(options.timeout); // tls only applies it to sockets it connects
    return socket;
  };
}
