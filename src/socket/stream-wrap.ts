// Node drives a socket that has no libuv handle through its internal JSStreamSocket wrapper
// whenever C++ must read it: an http2 session always wraps such a socket (client and server),
// tls a handle-less one. The wrapper answers from its own handle, which knows nothing of the
// connection: no remoteAddress or ports, and it is never 'connecting' — so an http2 client session
// over a ring emitted 'connect' before the ring had connected. For a wrapped ring socket, these
// answers now come from the ring socket, as they come from the TCP socket over TCP. Other
// wrapped streams are left exactly as Node treats them.

import net from 'node:net';
import { Duplex } from 'node:stream';
import tls from 'node:tls';

/** True for a RingSocket, also one whose set-up fell back to TCP (it keeps its ring state). */
function isRingOrigin(value: unknown): boolean {
  return typeof value === 'object' && value !== null && Symbol.for('xway.ringSocket') in value;
}

interface Wrapper extends net.Socket {
  stream?: unknown;
  _getpeername(): object;
  _getsockname(): object;
}
type Internals = { _getpeername(): object; _getsockname(): object };

const kConnecting = Symbol('xway.wrapperConnecting');
const kOwn = Symbol('xway.wrapperOwn');
const kDestroying = Symbol('xway.wrapperDestroying');
const kForwarding = Symbol('xway.wrapperForwarding');

/** Node's JSStreamSocket class (internal): the wrapper tls makes for a plain Duplex. */
function wrapperClass(): (abstract new (...args: never[]) => Wrapper) | null {
  const inner = new Duplex({ read() {}, write(_chunk, _encoding, callback) { callback(); } });
  const socket = new tls.TLSSocket(inner as unknown as net.Socket);
  const wrapper = (socket as unknown as { _handle?: { _parentWrap?: object } })._handle?._parentWrap;
  socket.destroy();
  inner.destroy();
  return wrapper ? (wrapper.constructor as abstract new (...args: never[]) => Wrapper) : null;
}

let patched = false;

/** Makes JSStreamSockets that wrap a ring socket answer as the ring socket does. Idempotent. */
export function patchStreamWrapper(): void {
  if (patched) return;
  patched = true;
  const Class = wrapperClass();
  if (!Class) return; // a Node without it: nothing wraps ring sockets there
  const proto = Class.prototype as Wrapper & { [kConnecting]?: boolean; [kForwarding]?: boolean };
  const base = Object.getPrototypeOf(proto) as Internals;
  const ring = (w: Wrapper) => (isRingOrigin(w.stream) ? (w.stream as net.Socket & Internals) : null);
  Object.defineProperties(proto, {
    _getpeername: { configurable: true, writable: true, value(this: Wrapper) { return ring(this)?._getpeername() ?? base._getpeername.call(this); } },
    _getsockname: { configurable: true, writable: true, value(this: Wrapper) { return ring(this)?._getsockname() ?? base._getsockname.call(this); } },
    // net's constructor assigns `connecting`: the setter keeps the wrapper's own value.
    connecting: {
      configurable: true,
      get(this: Wrapper & { [kConnecting]?: boolean; [kForwarding]?: boolean }) {
        const stream = ring(this);
        if (!stream?.connecting) return this[kConnecting] ?? false;
        // Whoever asks waits for 'connect' (http2 does): the wrapper emits it with the socket's.
        if (!this[kForwarding]) {
          this[kForwarding] = true;
          stream.once('connect', () => {
            this.emit('connect');
            this.emit('ready');
          });
        }
        return true;
      },
      set(this: { [kConnecting]?: boolean }, value: boolean) {
        this[kConnecting] = value;
      },
    },
  });
  // The server that accepted the socket (net sets both to null in its constructor: own values
  // are kept for wrappers of anything else). Not while the wrapper is destroyed: net's _destroy
  // counts a connection off its _server, and the ring socket below does that once already.
  const destroy = (proto as unknown as { _destroy: (this: Wrapper, err: Error | null, cb: (err?: Error | null) => void) => void })._destroy;
  Object.defineProperty(proto, '_destroy', {
    configurable: true,
    writable: true,
    value(this: Wrapper & { [kDestroying]?: boolean }, err: Error | null, cb: (err?: Error | null) => void) {
      this[kDestroying] = true;
      try {
        destroy.call(this, err, cb);
      } finally {
        this[kDestroying] = false;
      }
    },
  });
  for (const key of ['_server', 'server'] as const) {
    Object.defineProperty(proto, key, {
      configurable: true,
      get(this: Wrapper & { [kOwn]?: Record<string, unknown>; [kDestroying]?: boolean }) {
        const stream = this[kDestroying] ? null : (ring(this) as unknown as Record<string, unknown> | null);
        return stream ? stream[key] : this[kOwn]?.[key] ?? null;
      },
      set(this: { [kOwn]?: Record<string, unknown> }, value: unknown) {
        (this[kOwn] ??= {})[key] = value;
      },
    });
  }
}
