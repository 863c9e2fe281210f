// The client half of the preload: net.Socket.prototype.connect and tls.connect.
//
// Every TCP client in Node ends in net.Socket.prototype.connect — net.connect/createConnection,
// `new net.Socket().connect()`, http.Agent (its createConnection is net.createConnection), undici
// and global fetch for http:, http2.connect for http: — so patching it covers them all: when the
// switch (socket/connect.ts) finds a ring for the target, the very socket the program holds
// becomes a RingSocket in place. TLS is different: tls.connect() builds a TLSSocket whose libuv
// handle does the encryption over a TCP handle, so a ring cannot be slipped under it after the
// fact; tls.connect itself is patched instead and, for a co-resident target, runs TLS over a
// RingSocket exactly as `tls.connect({ socket })` does (https.Agent, undici and fetch for
// https:, http2.connect for https: all call tls.connect by name at call time).

import net from 'node:net';
import tls from 'node:tls';
import { heavy, ringPossible } from './lazy.js';

type Options = net.TcpNetConnectOpts & net.IpcNetConnectOpts & { socket?: unknown };
type Normalized = [Options, (() => void) | null];
type Connect = (this: net.Socket, ...args: unknown[]) => net.Socket;

const normalizeArgs = (net as unknown as { _normalizeArgs(args: unknown[]): Normalized })._normalizeArgs;
/** The mark net's own normalizeArgs puts on its result (internal/net's normalizedArgsSymbol). */
const kNormalized = Object.getOwnPropertySymbols(normalizeArgs([]))[0];
const kOriginalConnect = Symbol.for('xway.originalConnect');

export function patchClient(): void {
  const proto = net.Socket.prototype as unknown as { connect: Connect };
  const originalConnect = proto.connect;
  const connect = function (this: net.Socket, ...args: unknown[]) {
    // net.connect() passes its already normalized arguments as one array (marked so: any other
    // array is an options argument that net rejects, and so do we, through net).
    const first = args[0] as Normalized & { [key: symbol]: unknown };
    const normalized = Array.isArray(first) && kNormalized !== undefined && first[kNormalized] ? first : normalizeArgs(args);
    const [options, cb] = normalized;
    const self = this as net.Socket & { _handle?: unknown };
    // A socket with a handle already (a TLSSocket that tls.connect() connects itself, one made from
    // a descriptor), or one connecting: net's business. A closed one connects anew, as with net
    // (a closed ring socket becomes a plain one first when TCP takes it).
    const ringBefore = Symbol.for('xway.ringSocket') in this;
    if (self._handle || this.connecting || !ringPossible(options)) {
      if (ringBefore) heavy().plainAgain(this);
      return originalConnect.apply(this, args);
    }
    const h = heavy();
    if (!h.connectInPlace(this, options, cb, h.planConnection(options))) {
      h.plainAgain(this);
      return originalConnect.apply(this, args);
    }
    return this;
  } as Connect & { [kOriginalConnect]?: Connect };
  connect[kOriginalConnect] = originalConnect;
  proto.connect = connect;

  const tlsConnect = tls.connect as (...args: unknown[]) => tls.TLSSocket;
  (tls as { connect: unknown }).connect = function (...args: unknown[]) {
    // tls's own normalisation: net's, plus an options object after port/host merged in.
    const [options, cb] = normalizeArgs(args);
    if (args[1] !== null && typeof args[1] === 'object') Object.assign(options, args[1]);
    else if (args[2] !== null && typeof args[2] === 'object') Object.assign(options, args[2]);
    if (options.socket || !ringPossible(options)) return tlsConnect.apply(tls, args);
    const h = heavy();
    const plan = h.planConnection(options);
    if (plan.kind === 'tcp') return tlsConnect.apply(tls, args);
    // The TLSSocket copies its allowHalfOpen from the socket it wraps; after that the ring must
    // not end its direction by itself on the server's FIN: the TLSSocket decides (as over TCP).
    // tls.connect may still refuse its options (throw): the ring connect starts only once it took
    // them, so nothing is left connecting behind a call that failed.
    const ring = new h.RingSocket({ allowHalfOpen: !!options.allowHalfOpen });
    const socket = tlsConnect.call(tls, { ...options, socket: ring }, cb ?? undefined);
    h.connectInPlace(ring, options, null, plan);
    ring.allowHalfOpen = true;
    ring.once('connect', () => h.tcpView(socket, ring));
    // Over TCP the TLSSocket is the connecting socket: destroyed (an aborted signal, destroy()),
    // its connect goes with it. The ring below must go too, quietly, not fail later on its own.
    socket.once('close', () => {
      if (ring.connecting && !ring.destroyed) ring.destroy();
    });
    if (options.timeout) socket.setTimeout(options.timeout); // tls only applies it to sockets it connects
    return socket;
  };
}
