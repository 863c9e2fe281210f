// Making a net.Socket the program already holds ride a ring. A program that writes
// `new net.Socket().connect(port)` keeps that very object, so it cannot be swapped for a
// RingSocket; instead this object stays a plain net.Socket without a libuv handle (as net.Socket
// is before it connects) whose stream methods forward to a RingSocket behind it:
// writes go to the RingSocket (their callbacks wait for the ring, so backpressure carries
// through), the RingSocket's data is pushed into this socket, end() ends the ring's direction,
// destroy() destroys the ring. net's own timeout machinery stays (refreshed on every read and
// write), and the few accessors net computes from the handle (local address, bytes counts,
// pending) are answered from the ring. The cost is one more stream hop per chunk, no copy.

import type net from 'node:net';
import type { RingSocket } from '../socket/ring-socket.js';
import { kRing } from './transport.js';

interface Address { address: string; port: number; family: string }

interface SocketInternals extends net.Socket {
  [kRing]?: RingSocket;
  _peername?: Address | null;
  _getsockname(): Address | Record<string, never>;
  _unrefTimer(): void;
  _read(size: number): void;
  _write(chunk: unknown, encoding: BufferEncoding, cb: (err?: Error | null) => void): void;
  _writev(chunks: { chunk: unknown; encoding: BufferEncoding }[], cb: (err?: Error | null) => void): void;
  _final(cb: (err?: Error | null) => void): void;
  _destroy(err: Error | null, cb: (err?: Error | null) => void): void;
  connecting: boolean;
}

export function rideRing(target: net.Socket, ring: RingSocket, view: { local: Address; remote: Address }): void {
  const socket = target as SocketInternals;
  const destroyNet = socket._destroy;
  socket[kRing] = ring;
  socket.connecting = true;
  socket._peername = view.remote;
  socket._getsockname = () => view.local;

  let flowing = false;
  ring.on('data', (data: Buffer) => {
    socket._unrefTimer();
    if (!socket.push(data)) {
      flowing = false;
      ring.pause();
    }
  });
  ring.pause();
  ring.on('end', () => socket.push(null));
  ring.on('error', (err) => socket.destroy(err));
  ring.on('timeout', () => { /* net's own timer on `socket` reports idleness */ });
  ring.on('connect', () => {
    if (socket.destroyed) return;
    socket.connecting = false;
    socket.emit('connect');
    socket.emit('ready');
  });

  socket._read = () => {
    if (!flowing) {
      flowing = true;
      ring.resume();
    }
  };
  socket._write = (chunk, encoding, cb) => {
    socket._unrefTimer();
    ring.write(chunk as Buffer, encoding, cb);
  };
  socket._writev = (chunks, cb) => {
    socket._unrefTimer();
    ring.cork();
    chunks.forEach((c, i) => ring.write(c.chunk as Buffer, c.encoding, i === chunks.length - 1 ? cb : undefined));
    ring.uncork();
  };
  socket._final = (cb) => {
    ring.end(() => cb());
  };
  socket._destroy = function (err, cb) {
    if (!ring.destroyed) ring.destroy();
    // net's own _destroy: clears its timers, calls back and, with no handle, emits 'close' on
    // the next tick (without hadError; net's TCP path passes it, so pass it here too).
    const emit = socket.emit as (this: net.Socket, event: string | symbol, ...args: unknown[]) => boolean;
    socket.emit = function (this: net.Socket, event: string | symbol, ...args: unknown[]) {
      if (event === 'close') {
        socket.emit = emit as typeof socket.emit;
        return emit.call(this, 'close', !!err);
      }
      return emit.call(this, event, ...args);
    } as typeof socket.emit;
    destroyNet.call(socket, err, cb);
  };
  socket.resetAndDestroy = function () {
    ring.resetAndDestroy();
    return socket.destroy();
  };
  // A RingSocket still setting up has no channel to (un)ref yet: remember, apply on connect.
  let unref = false;
  ring.on('connect', () => { if (unref) ring.unref(); });
  socket.ref = function () {
    unref = false;
    ring.ref();
    return socket;
  };
  socket.unref = function () {
    unref = true;
    ring.unref();
    return socket;
  };
  const get = (fn: () => unknown) => ({ get: fn, configurable: true });
  Object.defineProperties(socket, {
    bytesRead: get(() => ring.bytesRead),
    bytesWritten: get(() => ring.bytesWritten),
    pending: get(() => socket.connecting),
  });
}
