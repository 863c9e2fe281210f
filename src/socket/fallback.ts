// A ring set-up that fails (the server went, refused, or timed out) is not the program's problem:
// the same socket object connects over TCP after all, as if xway had never looked at it. Whatever
// the program did meanwhile — writes, end(), reads, listeners, a timeout — carries over, because
// the object becomes a plain net.Socket again and is handed to net's own connect().

import net from 'node:net';
import type { RingSocket } from './ring-socket.js';
import { markTcp } from './tcp.js';

/** Set by the xway/register preload on its net.Socket.prototype.connect: the function it replaced. */
export const kOriginalConnect: unique symbol = Symbol.for('xway.originalConnect') as never;

type Connect = (this: net.Socket, ...args: unknown[]) => net.Socket;

/** net.Socket.prototype.connect as Node defines it, under the preload too. */
export function netConnect(): Connect {
  const current = net.Socket.prototype.connect as Connect & { [kOriginalConnect]?: Connect };
  return current[kOriginalConnect] ?? current;
}

interface WritableInternals {
  _write(chunk: Buffer, encoding: BufferEncoding, cb: (error?: Error | null) => void): void;
  _writev(chunks: { chunk: Buffer; encoding: BufferEncoding }[], cb: (error?: Error | null) => void): void;
  _final(cb: (error?: Error | null) => void): void;
  _read(size: number): void;
  connecting: boolean;
}

/** Turns `socket`, a RingSocket whose set-up failed, into a TCP connection to `options`. */
export function fallBackToTcp(socket: RingSocket, options: net.TcpNetConnectOpts): net.Socket {
  const { write, final, readWanted } = socket.takeBacklog();
  Object.setPrototypeOf(socket, net.Socket.prototype);
  const tcp = markTcp(socket);
  const self = tcp as unknown as WritableInternals;
  self.connecting = false;
  netConnect().call(tcp, options);
  // net buffers these itself until its connection is up.
  if (write) {
    const rest = write.chunks.slice(write.index).map((chunk, i) => (i === 0 && write.offset > 0 ? chunk.subarray(write.offset) : chunk));
    const encoding = 'buffer' as BufferEncoding; // what Writable passes for Buffer chunks
    if (rest.length === 1) self._write(rest[0], encoding, write.callback);
    else self._writev(rest.map((chunk) => ({ chunk, encoding })), write.callback);
  }
  if (final) self._final(final);
  if (readWanted) self._read(tcp.readableHighWaterMark);
  return tcp;
}
