// Node drives a socket that has no libuv handle through its internal JSStreamSocket wrapper
// whenever C++ must read it: an http2 session always wraps such a socket (client and server),
// tls a handle-less one. The wrapper answers from its own handle, which knows nothing of the
// connection: no remoteAddress or ports, and it is never 'connecting' — so an http2 client session
// over a ring emitted 'connect' before the ring had connected. For a wrapped ring socket, these
// answers now come from the ring socket, as they come from the TCP socket over TCP. Other
// wrapped streams are left exactly as Node treats them.

import net from 'node:net';
import os from 'node:os';
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

type WrapperClass = abstract new (...args: never[]) => Wrapper;
interface Found {
  Class: WrapperClass;
  /** The prototype of the wrapper's handle (Node's internal JSStream) and the key on a handle
   *  that holds its wrapper (net's owner symbol), where they could be found. */
  handleProto: Record<PropertyKey, unknown> | null;
  owner: symbol | undefined;
}

/** Node's JSStreamSocket class (internal): the wrapper tls makes for a plain Duplex. */
function wrapperClass(): Found | null {
  const inner = new Duplex({ read() {}, write(_chunk, _encoding, callback) { callback(); } });
  const socket = new tls.TLSSocket(inner as unknown as net.Socket);
  const wrapper = (socket as unknown as { _handle?: { _parentWrap?: { _handle?: object } } })._handle?._parentWrap;
  const handle = wrapper?._handle as Record<PropertyKey, unknown> | undefined;
  const owner = handle ? Object.getOwnPropertySymbols(handle).find((key) => handle[key] === wrapper) : undefined;
  const handleProto = handle ? (Object.getPrototypeOf(handle) as Record<PropertyKey, unknown>) : null;
  socket.destroy();
  inner.destroy();
  return wrapper ? { Class: wrapper.constructor as WrapperClass, handleProto, owner } : null;
}

let patched = false;
/** libuv's error for a write on a stream whose writing side has shut down. */
const UV_EPIPE = -os.constants.errno.EPIPE;

/** Makes JSStreamSockets that wrap a ring socket answer as the ring socket does. Idempotent. */
export function patchStreamWrapper(): void {
  if (patched) return;
  patched = true;
  const found = wrapperClass();
  if (!found) return; // a Node without it: nothing wraps ring sockets there
  const proto = found.Class.prototype as Wrapper & { [kConnecting]?: boolean; [kForwarding]?: boolean };
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
  // ref()/unref(): over TCP they reach the TCP handle (net's Socket.unref calls its handle's,
  // TLSWrap forwards to its parent handle's). The wrapper's handle (JSStream) has neither, so
  // an http2 session's or a TLS socket's unref() never reached the ring socket, which kept the
  // process alive. For a wrapper of a ring socket they now reach the ring socket; for any other
  // wrapped stream they do nothing, as before.
  const { handleProto, owner } = found;
  if (handleProto && owner !== undefined) {
    for (const key of ['ref', 'unref'] as const) {
      if (key in handleProto) continue;
      Object.defineProperty(handleProto, key, {
        configurable: true,
        writable: true,
        value(this: Record<PropertyKey, unknown>) {
          const wrapper = this[owner] as Wrapper | undefined;
          const stream = wrapper ? ring(wrapper) : null;
          if (stream) stream[key]();
        },
      });
    }
  }
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
  // A TLSSocket made over a socket the program holds (tls.connect({ socket }), new TLSSocket):
  // over TCP, TLSWrap takes that socket's handle, so its own JS stream never sees the server's
  // FIN and never ends itself — the TLSSocket decides when the direction ends. A ring socket,
  // wrapped, reads that FIN itself: with allowHalfOpen false (net's default) it ended itself at
  // once and net made its write writeAfterFIN, so TLS's close_notify (when the TLSSocket then
  // ended) failed with EPIPE "This socket has been ended by the other party", an 'error' the
  // TLSSocket never emits over TCP. Set after the TLSSocket copied the value (its constructor
  // reads it once the wrapper exists), as tls.connect's and a tls.Server's own rings already are.
  const tlsProto = tls.TLSSocket.prototype as unknown as { _init?: (this: unknown, ...args: unknown[]) => unknown };
  const init = tlsProto._init;
  if (typeof init === 'function') {
    Object.defineProperty(tlsProto, '_init', {
      configurable: true,
      writable: true,
      value(this: unknown, ...args: unknown[]) {
        const result = init.apply(this, args);
        const wrap = args[1];
        if (wrap instanceof found.Class) {
          const stream = ring(wrap);
          if (stream) stream.allowHalfOpen = true;
        }
        return result;
      },
    });
  }
  // A write after a shutdown: over TCP libuv refuses it at once with EPIPE (uv_write on a stream
  // uv_shutdown has ended), and the caller carries on. The wrapper asserts instead that no
  // shutdown is pending, which crashed the process when an http2 session was destroyed (and
  // flushed its last frames) while its socket was ending after the peer's FIN. For a wrapper of
  // a ring socket the write now fails as it would on the TCP handle.
  const doWrite = (proto as unknown as { doWrite?: (this: Wrapper, req: unknown, bufs: unknown) => number }).doWrite;
  if (typeof doWrite === 'function') {
    let shutdownKey: symbol | null | undefined;
    Object.defineProperty(proto, 'doWrite', {
      configurable: true,
      writable: true,
      value(this: Wrapper, req: unknown, bufs: unknown): number {
        if (ring(this)) {
          shutdownKey ??= Object.getOwnPropertySymbols(this).find((k) => k.description === 'kCurrentShutdownRequest') ?? null;
          if (shutdownKey !== null && (this as unknown as Record<symbol, unknown>)[shutdownKey] != null) return UV_EPIPE;
        }
        return doWrite.call(this, req, bufs);
      },
    });
  }
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
