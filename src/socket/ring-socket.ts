// RingSocket: a net.Socket-shaped Duplex carried by a channel end instead of a TCP connection.
// The rings are the socket buffers: a write copies into the tx ring (as much as fits now, the
// rest when the peer frees space), a read drains everything the rx ring holds in one go. When a
// direction cannot progress, the socket announces the wait in the ring and sleeps until the
// channel end wakes it — an idle connection costs nothing.
//
// This is the ring half of the socket layer (issue 4): the switch that picks ring or TCP, the
// server, and the rest of the net surface build on it.

import { Duplex } from 'node:stream';
import type { ChannelEnd } from '../platform/types.js';
import { XwayError } from '../errors.js';

export interface RingSocketOptions {
  allowHalfOpen?: boolean;
  /** What address()/remoteAddress report: the TCP endpoint this connection stands in for. */
  local?: { address: string; port: number; family: string };
  remote?: { address: string; port: number; family: string };
}

interface PendingWrite {
  chunks: Buffer[];
  index: number;
  offset: number;
  callback: (error?: Error | null) => void;
}

/** The error a net.Socket reports for the same event. */
function connectionReset(syscall: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`${syscall} ECONNRESET`), { code: 'ECONNRESET', errno: -104, syscall });
}

export class RingSocket extends Duplex {
  readonly transport = 'ring' as const;
  #end: ChannelEnd;
  #pending: PendingWrite | null = null;
  #readWanted = false;
  #bytesRead = 0;
  #bytesWritten = 0;
  #timeoutMs = 0;
  #timer: NodeJS.Timeout | null = null;
  readonly #local?: RingSocketOptions['local'];
  readonly #remote?: RingSocketOptions['remote'];

  constructor(end: ChannelEnd, options: RingSocketOptions = {}) {
    super({ allowHalfOpen: options.allowHalfOpen ?? false, emitClose: true, autoDestroy: true });
    this.#end = end;
    this.#local = options.local;
    this.#remote = options.remote;
    end.onwake = () => this.#wake();
    end.onpeergone = () => this.destroy(connectionReset('read'));
  }

  /** The channel this socket runs on (its rings' statistics: `socket.channel.tx.stats()`). */
  get channel() {
    return this.#end.channel;
  }

  // ---- reading: drain the rx ring into the readable buffer --------------------------------------

  override _read(): void {
    this.#readWanted = true;
    this.#pull();
  }

  #pull(): void {
    const rx = this.#end.channel.rx;
    try {
      while (this.#readWanted) {
        const data = rx.read();
        if (data) {
          if (rx.peerNeedsWake) this.#end.notify();
          this.#bytesRead += data.length;
          this.#touch();
          this.#readWanted = this.push(data);
          continue;
        }
        if (rx.ended) {
          this.#readWanted = false;
          this.push(null);
          return;
        }
        if (rx.prepareWaitData()) {
          this.#end.armWake();
          return; // #wake() resumes
        }
      }
    } catch (err) {
      this.destroy(this.#socketError(err, 'read'));
    }
  }

  // ---- writing: copy into the tx ring, waiting for space when it is full -----------------------

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.#pending = { chunks: [chunk], index: 0, offset: 0, callback };
    this.#flush();
  }

  override _writev(chunks: { chunk: Buffer }[], callback: (error?: Error | null) => void): void {
    this.#pending = { chunks: chunks.map((c) => c.chunk), index: 0, offset: 0, callback };
    this.#flush();
  }

  #flush(): void {
    const pending = this.#pending;
    if (!pending) return;
    const tx = this.#end.channel.tx;
    try {
      while (pending.index < pending.chunks.length) {
        const chunk = pending.chunks[pending.index];
        if (chunk.length === 0) {
          pending.index++; // empty writes (http sends some) carry nothing to wait for
          continue;
        }
        const n = tx.write(pending.offset === 0 ? chunk : chunk.subarray(pending.offset));
        if (tx.peerNeedsWake) this.#end.notify();
        if (n > 0) {
          this.#bytesWritten += n;
          this.#touch();
          pending.offset += n;
          if (pending.offset === chunk.length) {
            pending.index++;
            pending.offset = 0;
          }
          continue;
        }
        const rest = chunk.length - pending.offset;
        if (tx.prepareWaitSpace(Math.min(rest, tx.capacity))) {
          this.#end.armWake();
          return; // #wake() resumes
        }
      }
    } catch (err) {
      this.#pending = null;
      pending.callback(this.#socketError(err, 'write'));
      return;
    }
    this.#pending = null;
    pending.callback();
  }

  override _final(callback: (error?: Error | null) => void): void {
    try {
      const tx = this.#end.channel.tx;
      if (tx.end()) this.#end.notify();
      callback();
    } catch (err) {
      callback(this.#socketError(err, 'shutdown'));
    }
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.#clearTimer();
    this.#end.onwake = null;
    this.#end.onpeergone = null;
    this.#end.close(); // resets the channel unless both directions ended cleanly
    callback(error);
  }

  #wake(): void {
    if (this.destroyed) return;
    if (this.#pending) this.#flush();
    if (this.#readWanted) this.#pull();
  }

  /** Ring errors as the errors net reports: a reset is ECONNRESET, anything else passes through. */
  #socketError(err: unknown, syscall: string): Error {
    if (err instanceof XwayError && err.code === 'ECONNRESET') return connectionReset(syscall);
    return err as Error;
  }

  // ---- the net.Socket surface ----------------------------------------------------------------

  /** Closes at once and makes the peer see ECONNRESET (SO_LINGER=0 in net terms). */
  resetAndDestroy(): this {
    if (!this.destroyed && this.#end.channel.abort()) this.#end.notify();
    return this.destroy();
  }

  destroySoon(): void {
    if (this.writable) this.end();
    if (this.writableFinished) this.destroy();
    else this.once('finish', () => this.destroy());
  }

  setTimeout(ms: number, callback?: () => void): this {
    this.#timeoutMs = ms;
    if (callback) this.once('timeout', callback);
    this.#touch();
    return this;
  }

  #touch(): void {
    this.#clearTimer();
    if (this.#timeoutMs > 0 && !this.destroyed) {
      this.#timer = setTimeout(() => this.emit('timeout'), this.#timeoutMs);
      this.#timer.unref();
    }
  }

  #clearTimer(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
  }

  /** Accepted for compatibility: a ring has no Nagle delay to disable. */
  setNoDelay(_noDelay?: boolean): this {
    return this;
  }

  /** Accepted for compatibility: the channel end notices a dead peer at once, without probes. */
  setKeepAlive(_enable?: boolean, _initialDelay?: number): this {
    return this;
  }

  ref(): this {
    this.#end.ref();
    return this;
  }

  unref(): this {
    this.#end.unref();
    return this;
  }

  address(): { address: string; port: number; family: string } | Record<string, never> {
    return this.#local ? { ...this.#local } : {};
  }

  get remoteAddress(): string | undefined { return this.#remote?.address; }
  get remotePort(): number | undefined { return this.#remote?.port; }
  get remoteFamily(): string | undefined { return this.#remote?.family; }
  get localAddress(): string | undefined { return this.#local?.address; }
  get localPort(): number | undefined { return this.#local?.port; }
  get localFamily(): string | undefined { return this.#local?.family; }
  get bytesRead(): number { return this.#bytesRead; }
  get bytesWritten(): number { return this.#bytesWritten; }
  get connecting(): boolean { return false; }
  get pending(): boolean { return false; }

  get readyState(): 'open' | 'readOnly' | 'writeOnly' | 'closed' {
    if (this.destroyed) return 'closed';
    if (this.readable && this.writable) return 'open';
    if (this.readable) return 'readOnly';
    if (this.writable) return 'writeOnly';
    return 'closed';
  }
}
