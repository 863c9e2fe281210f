// RingSocket: a net.Socket-shaped Duplex carried by a channel end instead of a TCP connection.
// The rings are the socket buffers: a write copies into the tx ring (as much as fits now, the
// rest when the peer frees space), a read drains everything the rx ring holds in one go. When a
// direction cannot progress, the socket announces the wait in the ring and sleeps until the
// channel end wakes it — an idle connection costs nothing.
//
// This is the ring half of the socket layer (issue 4): the switch that picks ring or TCP, the
// server, and the rest of the net surface build on it.

import net, { type Socket } from 'node:net';
import type { ChannelEnd, PlatformName } from '../platform/types.js';
import type { Ring } from '../ring/ring.js';
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

/**
 * Adaptive polling, after KVM's halt-polling: before a direction that cannot progress goes to
 * sleep (announce the wait, then be woken through the platform: an event-channel notification
 * between processes), the socket first polls the ring for up to its poll budget, one check per
 * event-loop turn (setImmediate, so other sockets and timers still run). A peer that answers within
 * the budget is met without a wake-up on either side, which is what makes request/response fast:
 * no announcement, so no notification, so no system call. The budget grows while waits turn out
 * short and shrinks to nothing when polls expire unanswered, so an idle or slow peer costs one
 * short poll and then no CPU at all.
 */
const POLL_MIN_MS = 0.01;
const POLL_MAX_MS = 0.2;
const POLL_START_MS = 0.05;
/** A gap this long between two polls means this process is competing for a CPU (perhaps with
 *  its own peer): polling on would only delay the peer, so the socket sleeps instead. */
const POLL_STARVED_MS = 0.05;
/** At most 2^6 = 64 short sleeps between attempts to poll again. */
const POLL_MAX_MISSES = 6;

/** Reads are copied into slabs of this size, handed out as views (like Node's Buffer pool, but
 *  for large chunks too); a new slab starts when less than READ_SLAB_MIN_ROOM is left. One slab
 *  serves every socket of the thread, so idle connections hold none, and a slab lives only as
 *  long as some chunk cut from it does. */
const READ_SLAB = 512 * 1024;
const READ_SLAB_MIN_ROOM = 64 * 1024;
const slab = { buffer: null as Buffer | null, used: 0 };

/** How long a destroyed socket whose end of stream is sent waits for the peer's (Linux's
 *  tcp_fin_timeout is the same 60 s). */
const LINGER_MS = 60_000;

/**
 * Closes `end` the way close() after FIN closes a TCP socket. Closing the channel end now would
 * reset it (the peer has not ended its side), and a reset discards what the peer has not read
 * yet: destroySoon(), and so an http response with `Connection: close`, would lose its tail.
 * So the end stays open, unref'd, until the peer ends too (a clean close), is gone, or sends
 * more data (then it is reset, as TCP answers data after close with an RST), or LINGER_MS.
 */
function linger(end: ChannelEnd): void {
  end.unref();
  const rx = end.channel.rx;
  const close = () => {
    clearTimeout(timer);
    end.onwake = null;
    end.onpeergone = null;
    end.close();
  };
  const timer = setTimeout(close, LINGER_MS);
  timer.unref();
  const check = () => {
    try {
      for (;;) {
        if (rx.isReset || rx.ended || rx.readable > 0) return close(); // clean close, or a reset for new data
        if (rx.prepareWaitData()) return end.armWake();
      }
    } catch {
      close(); // the channel was reset
    }
  };
  end.onwake = check;
  end.onpeergone = close;
  check();
}

function toBuffer(chunk: Buffer | string, encoding: BufferEncoding): Buffer {
  return typeof chunk === 'string' ? Buffer.from(chunk, encoding) : chunk;
}

function brokenPipe(syscall: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`${syscall} EPIPE`), { code: 'EPIPE', errno: -32, syscall });
}

/**
 * A net.Socket (so `instanceof net.Socket` holds and every net method exists) that has no libuv
 * handle: each method that net implements on the handle is implemented here on the channel end.
 * Libraries that look for `socket._handle` (tls, http2) find none and wrap the socket as a JS
 * stream, which is what they do for any Duplex.
 */
export class RingSocket extends net.Socket {
  /** null while connecting (writes and reads wait for the channel). */
  #end: ChannelEnd | null = null;
  /** After a failed ring set-up: the TCP socket that carries this connection instead. */
  #tcp: Socket | null = null;
  #connecting = false;
  #finalCallback: ((error?: Error | null) => void) | null = null;
  #pending: PendingWrite | null = null;
  #readWanted = false;
  #bytesRead = 0;
  #bytesWritten = 0;
  #timeoutMs = 0;
  #timer: NodeJS.Timeout | null = null;
  /** Poll budget (ms), the current poll's deadline (0: not polling), and when the last sleep began. */
  #pollBudget = POLL_START_MS;
  #pollDeadline = 0;
  #polledAt = 0;
  /** Polls that expired in a row, and short sleeps still to pass before polling again: each
   *  miss in a row doubles the pause, so polling that cannot pay (no CPU for the peer while we
   *  poll) fades out instead of costing every transaction. */
  #pollMisses = 0;
  #pollPause = 0;
  #pollExpired = false;
  #sleptAt = 0;
  readonly #local?: RingSocketOptions['local'];
  readonly #remote?: RingSocketOptions['remote'];

  constructor(end: ChannelEnd | null, options: RingSocketOptions = {}) {
    // emitClose is off because net.Socket's 'close' carries hadError and a Duplex's carries
    // nothing: _destroy emits it instead (after any 'error', as net does).
    // net.Socket makes the Duplex with emitClose off (its 'close' carries hadError: _destroy emits
    // it, after any 'error', as net does) and decodeStrings off (so _write takes strings too).
    super({ allowHalfOpen: options.allowHalfOpen ?? false });
    this.#local = options.local;
    this.#remote = options.remote;
    if (end) this.#bind(end);
    else this.#connecting = true;
  }

  /** A socket whose channel is still being set up: attach() or fallBackTo() completes it. */
  static connecting(options: RingSocketOptions = {}): RingSocket {
    return new RingSocket(null, options);
  }

  #bind(end: ChannelEnd): void {
    this.#end = end;
    end.onwake = () => this.#wake();
    end.onpeergone = () => this.destroy(connectionReset('read'));
  }

  /** Completes a connecting socket with its channel; buffered writes and reads proceed. */
  attach(end: ChannelEnd): void {
    this.#bind(end);
    this.#connected();
    this.#wake();
    if (this.#finalCallback) this._final(this.#finalCallback);
  }

  /** Completes a connecting socket with a TCP connection instead (ring set-up failed). */
  fallBackTo(tcp: Socket): void {
    this.#tcp = tcp;
    tcp.on('connect', () => this.#connected());
    tcp.on('data', (data: Buffer) => {
      this.#bytesRead += data.length;
      this.#touch();
      if (!this.push(data)) tcp.pause();
    });
    tcp.on('end', () => this.push(null));
    tcp.on('error', (err) => this.destroy(err));
    tcp.on('close', () => { if (!this.destroyed) this.destroy(); });
    if (this.#pending) this.#flush();
    if (this.#finalCallback) this._final(this.#finalCallback);
  }

  #connected(): void {
    this.#connecting = false;
    this.emit('connect');
    this.emit('ready');
  }

  /**
   * tls.TLSSocket takes a net.Socket without a libuv handle for one that has not connected yet
   * (`connecting = socket.connecting || !socket._handle`) and waits for its 'connect' with
   * `once`. A RingSocket never has a handle, so a `once('connect')` added after it connected is
   * answered on the next tick — the one place this socket's events differ from net's.
   */
  static {
    const once = net.Socket.prototype.once as (this: net.Socket, event: string | symbol, listener: (...args: unknown[]) => void) => net.Socket;
    Object.defineProperty(RingSocket.prototype, 'once', {
      configurable: true,
      writable: true,
      value: function (this: RingSocket, event: string | symbol, listener: (...args: unknown[]) => void) {
        once.call(this, event, listener);
        if (event === 'connect' && !this.connecting && !this.destroyed && this.#tcp === null && this.#end !== null) {
          process.nextTick(() => {
            const waiting = this.rawListeners('connect').some((l) => l === listener || (l as { listener?: unknown }).listener === listener);
            if (!waiting) return;
            this.removeListener('connect', listener);
            listener.call(this);
          });
        }
        return this;
      },
    });
  }

  /** The platform carrying the ring: 'threads' (a peer in this process: Atomics on one shared
   *  memory) or 'host' (another process: a mapped segment and event channels); null on TCP or while
   *  connecting. */
  get platform(): PlatformName | null {
    return this.#end?.platform ?? null;
  }

  /** 'ring', or 'tcp' after a fallback. */
  get transport(): 'ring' | 'tcp' {
    return this.#tcp ? 'tcp' : 'ring';
  }

  /** The channel this socket runs on (its rings' statistics: `socket.channel.tx.stats()`). */
  get channel() {
    if (!this.#end) throw new Error(this.#tcp ? 'this connection fell back to TCP: it has no channel' : 'not connected yet');
    return this.#end.channel;
  }

  // ---- reading: drain the rx ring into the readable buffer --------------------------------------

  override _read(): void {
    if (this.#tcp) {
      this.#tcp.resume();
      return;
    }
    this.#readWanted = true;
    this.#pull();
  }

  #pull(): void {
    if (!this.#end) return;
    const rx = this.#end.channel.rx;
    try {
      while (this.#readWanted) {
        const data = this.#readChunk(rx);
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
        if (this.#poll()) return; // #pollTick() resumes
        if (rx.prepareWaitData()) {
          this.#sleep();
          return; // #wake() resumes
        }
      }
    } catch (err) {
      this.destroy(this.#socketError(err, 'read'));
    }
  }

  /** Copies what the ring holds into the read slab and returns it as a Buffer view (null when
   *  empty). One allocation per READ_SLAB bytes instead of one per read: for large reads the
   *  allocation, not the copy, was the cost. */
  #readChunk(rx: Ring): Buffer | null {
    if (slab.buffer === null || slab.buffer.length - slab.used < READ_SLAB_MIN_ROOM) {
      slab.buffer = Buffer.allocUnsafeSlow(READ_SLAB);
      slab.used = 0;
    }
    const n = rx.readInto(slab.buffer.subarray(slab.used));
    if (n === 0) return null;
    const data = slab.buffer.subarray(slab.used, slab.used + n);
    slab.used += (n + 7) & ~7;
    return data;
  }

  // ---- writing: copy into the tx ring, waiting for space when it is full -----------------------

  override _write(chunk: Buffer | string, encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.#pending = { chunks: [toBuffer(chunk, encoding)], index: 0, offset: 0, callback };
    this.#flush();
  }

  override _writev(chunks: { chunk: Buffer | string; encoding: BufferEncoding }[], callback: (error?: Error | null) => void): void {
    this.#pending = { chunks: chunks.map((c) => toBuffer(c.chunk, c.encoding)), index: 0, offset: 0, callback };
    this.#flush();
  }

  #flush(): void {
    const pending = this.#pending;
    if (!pending) return;
    if (this.#tcp) {
      this.#pending = null;
      const tcp = this.#tcp;
      const rest = pending.chunks.slice(pending.index);
      rest.forEach((chunk, i) => {
        this.#bytesWritten += chunk.length;
        tcp.write(chunk, i === rest.length - 1 ? pending.callback : undefined);
      });
      return;
    }
    if (!this.#end) return; // connecting: attach() flushes
    const end = this.#end;
    const tx = end.channel.tx;
    try {
      while (pending.index < pending.chunks.length) {
        const chunk = pending.chunks[pending.index];
        if (chunk.length === 0) {
          pending.index++; // empty writes (http sends some) carry nothing to wait for
          continue;
        }
        const n = tx.write(pending.offset === 0 ? chunk : chunk.subarray(pending.offset));
        if (tx.peerNeedsWake) end.notify();
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
        if (this.#poll()) return; // #pollTick() resumes
        const rest = chunk.length - pending.offset;
        // Wait for a quarter of the ring, not for room for the whole rest: the consumer then
        // wakes us while it still has data to drain, and both sides keep working at once.
        if (tx.prepareWaitSpace(Math.min(rest, tx.capacity >>> 2))) {
          this.#sleep();
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
    this.#finalCallback = null;
    if (this.#tcp) {
      this.#tcp.end(() => callback());
      return;
    }
    if (!this.#end) {
      this.#finalCallback = callback; // end() while connecting: FIN once connected
      return;
    }
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
    if (this.#end) {
      this.#end.onwake = null;
      this.#end.onpeergone = null;
      if (!error && this.#end.channel.tx.finished) linger(this.#end);
      else this.#end.close(); // resets the channel unless both directions ended cleanly
    }
    this.#tcp?.destroy();
    callback(error);
    process.nextTick(() => this.emit('close', !!error)); // net's close(hadError)
  }

  #wake(): void {
    if (this.destroyed || !this.#end) return;
    if (this.#sleptAt !== 0) {
      // A short sleep says polling a little longer would have met the peer: grow the budget.
      // Grow to what would have covered this wait (with a margin), not by a fixed step: a budget
      // that only doubled from its minimum could settle just short of a peer's steady answer time.
      const slept = performance.now() - this.#sleptAt;
      if (slept < POLL_MAX_MS) {
        if (this.#pollPause > 0) this.#pollPause--;
        else this.#pollBudget = Math.min(POLL_MAX_MS, Math.max(POLL_MIN_MS, this.#pollBudget * 2, slept * 1.5));
      }
      this.#sleptAt = 0;
    }
    if (this.#pending) this.#flush();
    if (this.#readWanted) this.#pull();
  }

  /** Starts (or continues) polling instead of sleeping; false when this wait should sleep. */
  #poll(): boolean {
    if (this.#pollDeadline !== 0) return true;
    if (this.#pollExpired || this.#pollBudget === 0) return false;
    this.#polledAt = 0; // the first turn may come late for our own work; later gaps say starved
    this.#pollDeadline = performance.now() + this.#pollBudget;
    setImmediate(this.#pollTick);
    return true;
  }

  readonly #pollTick = (): void => {
    const end = this.#end;
    if (this.destroyed || !end || (!this.#readWanted && !this.#pending)) {
      this.#pollDeadline = 0;
      return;
    }
    let ready = true;
    try {
      const { rx, tx } = end.channel;
      ready = (this.#readWanted && (rx.readable > 0 || rx.finished || rx.isReset))
        || (this.#pending !== null && (tx.writable > 0 || tx.isReset));
    } catch { /* a broken ring: let #wake() report it */ }
    if (ready) {
      this.#pollDeadline = 0;
      this.#pollMisses = 0;
      this.#wake();
      return;
    }
    const now = performance.now();
    const starved = this.#polledAt !== 0 && now - this.#polledAt > POLL_STARVED_MS;
    this.#polledAt = now;
    if (now < this.#pollDeadline && !starved) {
      setImmediate(this.#pollTick);
    } else {
      // Unanswered: stop polling for a while (longer after each miss in a row), and sleep now.
      this.#pollDeadline = 0;
      this.#pollBudget = 0;
      this.#pollMisses = Math.min(this.#pollMisses + 1, POLL_MAX_MISSES);
      this.#pollPause = 2 ** this.#pollMisses;
      this.#pollExpired = true;
      this.#wake();
      this.#pollExpired = false;
    }
  };

  /** Sleeps until the platform wakes this end (the wait is announced already). */
  #sleep(): void {
    this.#sleptAt = performance.now();
    this.#end!.armWake();
  }

  /** Ring errors as the errors net reports: a reset is ECONNRESET, anything else passes through. */
  #socketError(err: unknown, syscall: string): Error {
    if (err instanceof XwayError && err.code === 'ECONNRESET') {
      // Linux reports a reset that follows the peer's FIN (CLOSE_WAIT) as EPIPE, and net with it.
      if (this.#end?.channel.rx.finished) return brokenPipe(syscall);
      return connectionReset(syscall);
    }
    return err as Error;
  }

  // ---- the net.Socket surface ----------------------------------------------------------------

  /** Closes at once and makes the peer see ECONNRESET (SO_LINGER=0 in net terms). */
  override resetAndDestroy(): this {
    if (this.#tcp) {
      this.#tcp.resetAndDestroy();
      return this.destroy();
    }
    if (!this.destroyed && this.#end?.channel.abort()) this.#end.notify();
    return this.destroy();
  }

  override destroySoon(): void {
    if (this.writable) this.end();
    if (this.writableFinished) this.destroy();
    else this.once('finish', () => this.destroy());
  }

  override setTimeout(ms: number, callback?: () => void): this {
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
  override setNoDelay(_noDelay?: boolean): this {
    return this;
  }

  /** Accepted for compatibility: the channel end notices a dead peer at once, without probes. */
  override setKeepAlive(_enable?: boolean, _initialDelay?: number): this {
    return this;
  }

  override ref(): this {
    this.#end?.ref();
    this.#tcp?.ref();
    return this;
  }

  override unref(): this {
    this.#end?.unref();
    this.#tcp?.unref();
    return this;
  }

  override address(): net.AddressInfo | Record<string, never> {
    if (this.#tcp) return this.#tcp.address() as net.AddressInfo;
    return this.#local ? { ...this.#local } : {};
  }

  // net.Socket's own properties are accessors on its prototype (typed as plain properties in
  // @types/node, so they are defined here rather than as class accessors). `connecting` is
  // assigned by net.Socket's constructor, so it needs a setter that ignores it.
  static {
    const get = <T>(fn: (s: RingSocket) => T) => ({ get(this: RingSocket) { return fn(this); }, configurable: true });
    Object.defineProperties(RingSocket.prototype, {
      remoteAddress: get((s) => (s.#tcp ? s.#tcp.remoteAddress : s.#remote?.address)),
      remotePort: get((s) => (s.#tcp ? s.#tcp.remotePort : s.#remote?.port)),
      remoteFamily: get((s) => (s.#tcp ? s.#tcp.remoteFamily : s.#remote?.family)),
      localAddress: get((s) => (s.#tcp ? s.#tcp.localAddress : s.#local?.address)),
      localPort: get((s) => (s.#tcp ? s.#tcp.localPort : s.#local?.port)),
      localFamily: get((s) => (s.#tcp ? s.#tcp.localFamily : s.#local?.family)),
      bytesRead: get((s) => s.#bytesRead),
      bytesWritten: get((s) => s.#bytesWritten),
      bufferSize: get((s) => s.writableLength),
      pending: get((s) => (s.#tcp ? s.#tcp.pending : s.#connecting)),
      connecting: { ...get((s) => (s.#tcp ? s.#tcp.connecting : s.#connecting)), set() { /* derived */ } },
      readyState: get((s): 'open' | 'readOnly' | 'writeOnly' | 'closed' => {
        if (s.destroyed) return 'closed';
        if (s.readable && s.writable) return 'open';
        if (s.readable) return 'readOnly';
        if (s.writable) return 'writeOnly';
        return 'closed';
      }),
    });
  }
}
