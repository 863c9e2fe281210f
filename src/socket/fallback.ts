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

/** What a stream's _undestroy() resets (Node's lib/internal/streams/destroy.js). */
const READABLE_STATE = ['constructed', 'closed', 'closeEmitted', 'destroyed', 'errored', 'errorEmitted', 'reading', 'ended', 'endEmitted'] as const;
const WRITABLE_STATE = ['constructed', 'destroyed', 'closed', 'closeEmitted', 'errored', 'errorEmitted', 'finalCalled', 'prefinished', 'ended', 'ending', 'finished'] as const;
type StreamState = Record<string, unknown>;

function saved(state: StreamState | undefined, keys: readonly string[]): () => void {
  if (!state) return () => {};
  const values = keys.map((key) => state[key]);
  return () => keys.forEach((key, i) => { state[key] = values[i]; });
}

/** Turns `socket`, a RingSocket whose set-up failed, into a TCP connection to `options`. */
export function fallBackToTcp(socket: RingSocket, options: net.TcpNetConnectOpts): net.Socket {
  const { write, final, readWanted } = socket.takeBacklog();
  Object.setPrototypeOf(socket, net.Socket.prototype);
  const tcp = markTcp(socket);
  const self = tcp as unknown as WritableInternals;
  self.connecting = false;
  // net's connect() gives the socket its handle and, with it, an _undestroy(): once, when the
  // program called connect(). This second connect must not do it again, or an error already
  // emitted (an aborted signal's) would be emitted afresh for a connect that fails.
  const streams = tcp as unknown as { _readableState?: StreamState; _writableState?: StreamState };
  const restoreReadable = saved(streams._readableState, READABLE_STATE);
  const restoreWritable = saved(streams._writableState, WRITABLE_STATE);
  netConnect().call(tcp, options);
  restoreReadable();
  restoreWritable();
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
