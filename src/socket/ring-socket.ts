// RingSocket: a net.Socket whose connection is a channel end instead of a TCP handle.
//
// The rings are the kernel's socket buffers: a write copies into the tx ring (as much as fits now,
// the rest when the peer frees space), a read drains what the rx ring holds. When a direction
// cannot progress, the socket polls briefly (poll-policy.ts), then announces the wait in the ring
// and sleeps until the channel end wakes it — an idle connection costs nothing.
//
// Everything a program can observe follows net.Socket over a loopback TCP connection: events and
// their order, error codes, teardown (channel.ts: close() sends FIN, or RST when bytes were left
// unread), addresses and ports (identity.ts), byte counts, bufferSize, pending, readyState,
// timeouts. Where net.Socket's own code works without a handle (end, destroySoon, setTimeout,
// setNoDelay, readyState, bytesWritten...) it runs unchanged; what net does with its handle is
// done here with the channel end.
//
// The ring state lives in one symbol-keyed field rather than in private fields, so that a
// net.Socket a program already holds can become a RingSocket in place (RingSocket.adopt: the
// xway/register preload) and a RingSocket whose set-up failed can become a plain TCP socket again
// (fallback.ts): one object, one stream, whichever transport carries it.

import net from 'node:net';
import type { ChannelEnd, PlatformName } from '../platform/types.js';
import type { Ring } from '../ring/ring.js';
import { RingClosedError, XwayError } from '../errors.js';
import { atClose, atNextRead, loopTurn } from '../platform/host/loop-phases.js';
import { PollPolicy } from './poll-policy.js';
import { READ_MAX, readChunk } from './receive-pool.js';
import { cancelWatch, inWatchReport, nativePolling, watchCount, watchRing, WatchEnd } from './ring-poller.js';
import { patchStreamWrapper } from './stream-wrap.js';
import { constructorOptions } from './socket-options.js';
import type { ConnectionView, SocketAddress } from './identity.js';

export interface RingSocketOptions extends net.SocketConstructorOpts {
  /** An accepted connection starts paused (net.Server's pauseOnConnect). */
  pauseOnCreate?: boolean;
  readableHighWaterMark?: number;
  writableHighWaterMark?: number;
}

type Callback = (error?: Error | null) => void;

interface PendingWrite {
  chunks: Buffer[];
  index: number;
  offset: number;
  callback: Callback;
  /** Copied into the ring before the server accepted: its callback waits for 'connect'. */
  early?: boolean;
  /** Made while connecting: as net does, a 'close' before 'connect' fails it (this listener). */
  onClose?: () => void;
}

/** The ring transport's part of a socket. */
class RingState {
  end: ChannelEnd | null = null;
  view: ConnectionView | null = null;
  /** A set-up is under way (the socket has, in TCP terms, a handle). */
  settingUp = false;
  pending: PendingWrite | null = null;
  /** end() before the channel existed: FIN once it does. */
  pendingFinal: Callback | null = null;
  /** The shutdown _final scheduled, until it has run (wake() runs it before reading). */
  shutdownDue: (() => void) | null = null;
  readWanted = false;
  readScheduled = false;
  /** What a scheduled read runs, and the channel end's wake-up handler (made once per socket). */
  scheduledPull: (() => void) | null = null;
  onwake: (() => void) | null = null;
  /** The loop turn of the last short read (see markShortRead), and whether a wake-up that came
   *  in that turn waits for the next poll phase. */
  shortReadTurn = NaN;
  wakeDeferred = false;
  bytesRead = 0;
  bytesDispatched = 0;
  /** The loop turn of the last write published at once, and whether staged writes wait for the
   *  end of the tick (see tryWrite). */
  writeTurn = NaN;
  publishDue = false;
  unrefd = false;
  readonly poll = new PollPolicy();
  pollScheduled = false;
  /** The native watch of the current poll (ring-poller.ts), or 0. */
  watchId = 0;
  /** Chunks Writable still holds that were copied into the ring while connecting (copyAhead), in
   *  order: when Writable hands them over after 'connect', they are not copied again. */
  ahead: (Buffer | string)[] = [];
}

/** A ring socket's state (also the mark stream-wrap.ts looks for: it stays after a fallback). */
const kState: unique symbol = Symbol.for('xway.ringSocket') as never;
/** net's timer slot, so that destroy clears what net's setTimeout armed (net does the same). */
const kTimeout = Object.getOwnPropertySymbols(new net.Socket()).find((s) => s.description === 'timeout');

/** Staged small writes are published at this many bytes (or an eighth of the ring): see tryWrite. */
const PUBLISH_BATCH = 16 * 1024;
/** Native watches of one thread at most (see poll). */
const MAX_WATCHES = 8;
/** libuv reads a readable socket at most 32 times per poll event (uv__read). */
const READS_PER_PULL = 32;
/** The error net.Socket reports for an ECONNRESET or EPIPE from the kernel. */
const ERRNO = { ECONNRESET: -104, EPIPE: -32, ETIMEDOUT: -110 } as const;

function errnoError(code: keyof typeof ERRNO, syscall: string): NodeJS.ErrnoException {
  const errno = ERRNO[code];
  return Object.assign(new Error(`${syscall} ${code}`), { code, errno, syscall });
}

function toBuffer(chunk: Buffer | string, encoding: BufferEncoding): Buffer {
  return typeof chunk === 'string' ? Buffer.from(chunk, encoding) : chunk;
}

function closedBeforeConnection(): Error {
  return Object.assign(new Error('Socket closed before the connection was established'), { code: 'ERR_SOCKET_CLOSED_BEFORE_CONNECTION' });
}

/** A write made while connecting is failed by a 'close' before 'connect', as net's is. */
function failOnClose(socket: RingSocket, write: PendingWrite): void {
  write.onClose = () => {
    write.onClose = undefined;
    write.callback(closedBeforeConnection());
  };
  socket.once('close', write.onClose);
}

function connectedNow(socket: RingSocket, write: PendingWrite | null): void {
  if (!write?.onClose) return;
  socket.off('close', write.onClose);
  write.onClose = undefined;
}

function socketClosed(): Error {
  return Object.assign(new Error('Socket is closed'), { code: 'ERR_SOCKET_CLOSED' });
}

interface NetInternals {
  connecting: boolean;
  readableFlowing: boolean | null;
  _server?: { _connections: number; _emitCloseIfDrained?: () => void } | null;
  _peername?: SocketAddress | null;
  _sockname?: SocketAddress | null;
  _pendingData: unknown;
  _pendingEncoding: string;
  _unrefTimer(): void;
  [key: symbol]: unknown;
}

export class RingSocket extends net.Socket {
  declare [kState]: RingState;

  constructor(options: RingSocketOptions = {}) {
    super(constructorOptions(options));
    if (options.allowHalfOpen) this.allowHalfOpen = true; // what net.Socket does with the key
    this[kState] ??= new RingState(); // net's constructor may already have destroyed it (an aborted signal)
    patchStreamWrapper();
  }

  /** Makes `socket` — a net.Socket not yet connected, of no subclass — a RingSocket in place. */
  static adopt(socket: net.Socket): RingSocket {
    Object.setPrototypeOf(socket, RingSocket.prototype);
    const ring = socket as RingSocket;
    ring[kState] = new RingState();
    patchStreamWrapper();
    return ring;
  }

  /** A closed RingSocket connected again (net lets a closed socket connect anew): fresh state,
   *  and un-destroyed as net's connect() un-destroys a socket it gives a new handle. */
  renew(): this {
    this[kState] = new RingState();
    if (this.destroyed) (this as unknown as { _undestroy(): void })._undestroy();
    return this;
  }

  /** A connected RingSocket over a channel end made by hand (createThreadChannel, connectHost…):
   *  it has no TCP addresses, since no listener gave it any. */
  static over(end: ChannelEnd, options: RingSocketOptions = {}): RingSocket {
    return RingSocket.accepted(end, null, options);
  }

  /** A RingSocket for an accepted channel end, connected at once (as net wraps an accepted handle). */
  static accepted(end: ChannelEnd, view: ConnectionView | null, options: RingSocketOptions = {}): RingSocket {
    const socket = new RingSocket(options);
    bind(socket, end, view);
    if (options.pauseOnCreate) internals(socket).readableFlowing = false;
    else socket.read(0); // start draining into the readable buffer, as net starts reading a handle
    return socket;
  }

  /** Marks the start of set-up: from here the socket is connecting, as after net's connect(). */
  beginSetUp(): void {
    internals(this).connecting = true;
    this[kState].settingUp = true;
    internals(this)._unrefTimer();
  }

  /**
   * Gives a connecting socket its channel before the server accepted it: what the program wrote
   * while connecting is copied into the ring at once, so the server finds it with the connection
   * (accept overlaps the first data, as TCP Fast Open lets a SYN carry data). Nothing else changes
   * until attach(): no 'connect', no read, write callbacks held back. If set-up then fails, the
   * ring's copy is dropped and the TCP socket that replaces it sends the same bytes.
   */
  prepare(end: ChannelEnd): void {
    const s = this[kState];
    if (this.destroyed || !this.connecting || s.end) return;
    s.end = end;
    end.onwake = wakeHandler(this);
    if (s.pending) {
      s.pending.early = true;
      flush(this);
      copyAhead(this);
    }
  }

  /** Completes set-up with the channel end: 'connect', then buffered writes and reads proceed. */
  attach(end: ChannelEnd, view: ConnectionView): void {
    const s = this[kState];
    s.settingUp = false;
    bind(this, end, view);
    internals(this).connecting = false;
    internals(this)._sockname = null;
    holdLoop(this);
    internals(this)._unrefTimer();
    this.emit('connect');
    this.emit('ready');
    const pending = s.pending;
    connectedNow(this, pending);
    if (pending) {
      internals(this)._pendingData = null;
      internals(this)._pendingEncoding = '';
      for (const chunk of pending.chunks) s.bytesDispatched += chunk.length;
      pending.early = false;
      if (pending.index >= pending.chunks.length) {
        s.pending = null; // all of it went out before the server accepted
        pending.callback();
      }
    }
    if (s.pending) flush(this);
    // What the server already sent (it may have answered before we saw its ACCEPT) is read at the
    // next turn, as TCP's first bytes after a connect arrive at a later poll.
    if (s.readWanted) schedulePull(this);
    if (s.pendingFinal) this._final(s.pendingFinal);
    if (!this.isPaused()) this.read(0);
  }

  /** What set-up left for the TCP socket that replaces it (see fallback.ts). */
  takeBacklog(): { write: PendingWrite | null; final: Callback | null; readWanted: boolean } {
    const s = this[kState];
    if (s.pending) { // what went into a ring set-up never finished goes again, whole
      s.pending.index = 0;
      s.pending.offset = 0;
    }
    s.end = null;
    s.ahead = []; // Writable still holds them: net sends them
    connectedNow(this, s.pending); // net's own write path takes the write over, with its own listener
    const backlog = { write: s.pending, final: s.pendingFinal, readWanted: s.readWanted };
    s.pending = null;
    s.pendingFinal = null;
    s.readWanted = false;
    s.settingUp = false;
    return backlog;
  }


  /**
   * tls.TLSSocket takes a net.Socket without a libuv handle for one that has not connected yet
   * (`connecting = socket.connecting || !socket._handle`) and waits for its 'connect' with
   * `once`. A RingSocket never has a handle, so a `once('connect')` added after it connected is
   * answered on the next tick.
   */
  static {
    const once = net.Socket.prototype.once as (this: net.Socket, event: string | symbol, listener: (...args: unknown[]) => void) => net.Socket;
    Object.defineProperty(RingSocket.prototype, 'once', {
      configurable: true,
      writable: true,
      value: function (this: RingSocket, event: string | symbol, listener: (...args: unknown[]) => void) {
        once.call(this, event, listener);
        const s = this[kState];
        if (event === 'connect' && !this.connecting && !this.destroyed && s?.end) {
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

  /** The platform carrying the ring: 'threads' (a peer in this process), 'host' (another process)
   *  or 'xen' (another domain); null while connecting. */
  get platform(): PlatformName | null {
    return this[kState].end?.platform ?? null;
  }

  /** Which transport carries the connection: always 'ring' here (a socket whose ring set-up
   *  failed is a plain TCP net.Socket, with transport 'tcp'). */
  get transport(): 'ring' {
    return 'ring';
  }

  /** The channel this socket runs on (its rings' statistics: `socket.channel.tx.stats()`). */
  get channel() {
    const end = this[kState].end;
    if (!end) throw new Error('not connected yet');
    return end.channel;
  }

  // ---- reading: drain the rx ring into the readable buffer --------------------------------------

  /** net starts reading its handle here, and the bytes arrive at the loop's next poll: so does a
   *  ring's first read after a pause (bytesRead and the readable buffer change only then). */
  override _read(): void {
    const s = this[kState];
    if (s.readWanted) return;
    s.readWanted = true;
    holdLoop(this);
    schedulePull(this);
  }


  // ---- writing: copy into the tx ring, waiting for space when it is full -----------------------

  override _write(chunk: Buffer | string, encoding: BufferEncoding, callback: Callback): void {
    const s = this[kState];
    const end = s.end;
    // The common case first: connected, nothing queued or copied ahead (copyAhead's chunks are
    // not copied again), and the ring takes all of it at once.
    if (end !== null && !this.connecting && s.pending === null && s.ahead.length === 0 && !end.closed) {
      const bytes = typeof chunk === 'string' ? Buffer.from(chunk, encoding) : chunk;
      const n = tryWrite(this, end, bytes);
      if (n === bytes.length) return callback();
      if (n >= 0) {
        const write = { chunks: [bytes], index: 0, offset: n, callback };
        s.pending = write;
        return flush(this);
      }
    }
    dispatch(this, { chunks: unsent(this, [{ chunk, encoding }]), index: 0, offset: 0, callback }, chunk, encoding);
  }

  override _writev(chunks: { chunk: Buffer | string; encoding: BufferEncoding }[], callback: Callback): void {
    dispatch(this, { chunks: unsent(this, chunks), index: 0, offset: 0, callback }, chunks, '');
  }

  // Writable takes a write while another is in flight into its buffer; while connecting, the
  // bytes go on into the ring at once (copyAhead), as over TCP they are all in the kernel before
  // the server reads the first.
  // (Defined on the prototype: net.Socket's write has overloads a method cannot restate.)
  static {
    const write = net.Socket.prototype.write as (this: net.Socket, ...args: unknown[]) => boolean;
    Object.defineProperty(RingSocket.prototype, 'write', {
      configurable: true,
      writable: true,
      value: function (this: RingSocket, ...args: unknown[]): boolean {
        const result = write.apply(this, args);
        if (this.connecting && this[kState].end) copyAhead(this);
        return result;
      },
    });
  }



  override _final(callback: Callback): void {
    const s = this[kState];
    s.pendingFinal = null;
    const end = s.end;
    if (!end) {
      if (this.connecting) s.pendingFinal = callback; // end() while connecting: FIN once connected
      else callback();
      return;
    }
    // libuv shuts a socket down, and completes net's shutdown request, at the loop's next turn:
    // a write right after end() still fails as a write after end, with no 'finish'. It does so
    // before it reads the socket again (its pending phase), so a reset that arrives meanwhile is
    // read after 'finish' — or never, by a socket that destroySoon() destroys at 'finish'.
    const shutdown = () => {
      if (s.shutdownDue !== shutdown) return;
      s.shutdownDue = null;
      if (this.destroyed || end.closed) return callback();
      try {
        if (!end.channel.tx.finished && end.channel.tx.end()) end.notify();
        callback();
      } catch (err) {
        callback(socketError(this, err, 'shutdown'));
      }
    };
    s.shutdownDue = shutdown;
    setImmediate(shutdown);
  }

  /** end(data): the peer is woken once for the data and the FIN, which _final sends at the next
   *  turn (ChannelEnd.holdPeer), not once for each. */
  override end(...args: unknown[]): this {
    const end = this.connecting ? null : this[kState]?.end;
    const held = end?.holdPeer !== undefined;
    if (held) end!.holdPeer!();
    (net.Socket.prototype.end as (...a: unknown[]) => unknown).apply(this, args);
    if (held) setImmediate(releasePeer, end!); // after _final's, queued by end() when nothing waits
    return this;
  }

  override _destroy(error: Error | null, callback: Callback): void {
    const s = (this[kState] ??= new RingState());
    const hadHandle = s.end !== null || s.settingUp;
    internals(this).connecting = false;
    s.settingUp = false;
    s.poll.cancel();
    if (s.watchId !== 0) {
      cancelWatch(s.watchId);
      s.watchId = 0;
      s.pollScheduled = false;
    }
    if (kTimeout) clearTimeout(internals(this)[kTimeout] as NodeJS.Timeout | undefined);
    s.end?.close(); // TCP's close(): FIN after what was written, or RST if bytes were left unread
    // What the kernel does with requests in flight when a socket closes: they complete, without
    // an error (net's onWriteComplete on a destroyed stream), after the 'error' and before 'close'.
    const { pending, pendingFinal } = s;
    s.pending = null;
    s.pendingFinal = null;
    const server = internals(this)._server;
    if (server) {
      server._connections--;
      server._emitCloseIfDrained?.();
    }
    callback(error);
    // net emits 'close' from the handle's close callback — libuv runs those in the loop's close
    // phase, after this turn's promise jobs and the check phase — and, with no handle ever, on the
    // next tick. Requests in flight complete just before, without an error.
    const closed = () => {
      if (!pending?.onClose) pending?.callback(null); // else its 'close' listener fails it
      pendingFinal?.(null);
      // net's 'close' carries hadError once a handle existed, and nothing before.
      if (hadHandle) this.emit('close', !!error);
      else this.emit('close');
    };
    if (hadHandle) atClose(closed);
    else process.nextTick(closed);
  }






  // ---- the net.Socket surface that net implements on its handle -----------------------------

  /** Closes at once and makes the peer see ECONNRESET (SO_LINGER=0 in net terms). */
  override resetAndDestroy(): this {
    const s = this[kState];
    if (this.connecting) {
      this.once('connect', () => this.resetAndDestroy());
      return this;
    }
    const end = s.end;
    if (!end || end.closed || this.destroyed) return this.destroy(socketClosed());
    if (end.channel.abort()) end.notify();
    return this.destroy();
  }

  override ref(): this {
    const s = this[kState];
    s.unrefd = false;
    holdLoop(this);
    return this;
  }

  override unref(): this {
    const s = this[kState];
    s.unrefd = true;
    holdLoop(this);
    return this;
  }

  /** What net's getsockname on the handle gives: this end's address while connected. */
  _getsockname(): SocketAddress | Record<string, never> {
    const s = this[kState];
    if (!s.view || this.connecting || !s.end || s.end.closed) return {};
    const self = internals(this);
    return (self._sockname ??= { ...s.view.local });
  }

  /** What net's getpeername gives: the peer's address once connected, cached as net caches it. */
  _getpeername(): SocketAddress | Record<string, never> {
    const s = this[kState];
    const self = internals(this);
    if (!s.view || this.connecting || !s.end || s.end.closed) return self._peername ?? {};
    return (self._peername ??= { ...s.view.remote });
  }

  // net.Socket's own properties are accessors on its prototype (typed as plain properties in
  // @types/node, so they are defined here rather than as class accessors).
  static {
    const get = <T>(fn: (s: RingSocket) => T) => ({ get(this: RingSocket) { return fn(this); }, configurable: true });
    const open = (s: RingSocket) => { const end = s[kState].end; return end !== null && !end.closed; };
    Object.defineProperties(RingSocket.prototype, {
      bytesRead: get((s) => s[kState].bytesRead),
      // net's bytesWritten adds what Writable still buffers to this.
      _bytesDispatched: get((s) => s[kState].bytesDispatched),
      // net: `!this._handle || this.connecting`, and `_handle ? writableLength : undefined`.
      pending: get((s) => s.connecting || !open(s)),
      bufferSize: get((s) => (open(s) || s[kState].settingUp ? s.writableLength : undefined)),
    });
  }
}

function bind(socket: RingSocket, end: ChannelEnd, view: ConnectionView | null): void {
  const s = socket[kState];
  s.end = end;
  s.view = view;
  end.onwake = wakeHandler(socket);
}

function releasePeer(end: ChannelEnd): void {
  end.releasePeer!();
}

function wakeHandler(socket: RingSocket): () => void {
  return (socket[kState].onwake ??= () => wake(socket));
}

/**
 * Keeps the event loop alive for this socket exactly when libuv would for a TCP handle: while it
 * connects, reads (until the peer's FIN, or while net has stopped reading into a full buffer) or
 * has a write in flight — never once unref()'d. So a socket that got the peer's FIN and has
 * nothing left to send lets the process exit though the program never destroyed it, as over TCP.
 */
function holdLoop(socket: RingSocket): void {
  const s = socket[kState];
  const end = s.end;
  if (!end || end.closed) return;
  if (!s.unrefd && (socket.connecting || s.readWanted || s.pending !== null)) end.ref();
  else end.unref();
}

function schedulePull(socket: RingSocket): void {
  const s = socket[kState];
  if (s.readScheduled) return;
  s.readScheduled = true;
  const run = (s.scheduledPull ??= () => {
    s.readScheduled = false;
    pull(socket);
  });
  // From a native watch's report (idle phase), "next poll" must skip this turn's: the read just
  // made counts as this poll's.
  if (inWatchReport()) atNextRead(() => atNextRead(run));
  else atNextRead(run);
}

function pull(socket: RingSocket): void {
  const s = socket[kState];
  const end = s.end;
  if (!end || end.closed || socket.connecting) return; // reads begin at 'connect'
  try {
    drain(socket, end, end.channel.rx);
  } catch (err) {
    socket.destroy(socketError(socket, err, 'read'));
    return;
  }
  holdLoop(socket);
}

/** Reads while net wants more: a chunk per read as libuv reads, the end at FIN; when the ring is
 *  empty, polls or sleeps (a later pull resumes). Ring errors propagate to pull().
 *  As libuv's uv__read, one pull stops after a read that did not fill its buffer, or after
 *  READS_PER_PULL reads, and leaves what came meanwhile (data, the FIN) to the next poll phase:
 *  over TCP a FIN that follows a short read is always seen a loop turn later, and programs
 *  depend on the check phase running in between (http2 destroys its session there). */
function drain(socket: RingSocket, end: ChannelEnd, rx: Ring): void {
  const s = socket[kState];
  let reads = 0;
  let stopped = false; // a short read, or the reads of one pull used up
  while (s.readWanted) {
    if (stopped && (rx.unread > 0 || rx.finished || rx.isReset) && !hungUp(end, rx)) return schedulePull(socket);
    const data = readChunk(rx); // drains even after a reset, then throws it
    if (data) {
      if (rx.peerNeedsWake) end.notify();
      s.bytesRead += data.length;
      internals(socket)._unrefTimer();
      s.readWanted = socket.push(data);
      const short = data.length < READ_MAX;
      if (short) markShortRead(socket);
      stopped = short || ++reads === READS_PER_PULL;
      continue;
    }
    // FIN, and nothing before it left: data published between the empty read above and the
    // FIN would otherwise be lost (flags first, then the index, as the producer publishes them
    // in the other order).
    if (rx.ended) {
      // net's onStreamRead at EOF: push the end, then read(0), which emits 'end' at once when
      // nothing is buffered, even with no 'data' listener.
      s.readWanted = false;
      internals(socket)._unrefTimer();
      socket.push(null);
      socket.read(0);
      return;
    }
    if (rx.finished) continue; // the data that came before the FIN first
    // The peer's machine vanished: what had arrived is read, then the connection times out.
    if (end.vanished) throw errnoError('ETIMEDOUT', 'read');
    if (poll(socket)) return; // the poll tick resumes
    if (rx.prepareWaitData()) {
      sleep(socket);
      return; // wake() resumes
    }
  }
}

/** epoll reports a socket once per poll: whatever comes for it after a short read (the FIN,
 *  more data) is read at the next poll phase, even when the platform wakes it again in this
 *  turn (a link serving a later mark, a second waitAsync). */
function markShortRead(socket: RingSocket): void {
  socket[kState].shortReadTurn = loopTurn();
}

/** libuv's exception (uv__stream_io): a poll that reports POLLHUP with a short read ends the
 *  stream at once. Linux reports POLLHUP once both directions are shut: the peer's FIN arrived
 *  and this side has sent its own. */
function hungUp(end: ChannelEnd, rx: Ring): boolean {
  return rx.finished && rx.unread === 0 && end.channel.tx.finished;
}

/**
 * While connecting, with the ring prepared and the write in flight all in it: copies the writes
 * Writable holds behind it into the ring too, whole ones while they fit (the rest follows
 * 'connect', in order). Corked writes stay held, as they would over TCP.
 */
function copyAhead(socket: RingSocket): void {
  const s = socket[kState];
  const end = s.end;
  if (!end || end.closed || !socket.connecting) return;
  if (s.pending && s.pending.index < s.pending.chunks.length) return; // the write in flight is not all in yet
  const state = (socket as unknown as { _writableState: { buffered?: { chunk: Buffer | string; encoding: BufferEncoding }[]; bufferedIndex?: number; corked: number } })._writableState;
  if (!Array.isArray(state.buffered) || state.corked) return;
  const tx = end.channel.tx;
  for (let i = (state.bufferedIndex ?? 0) + s.ahead.length; i < state.buffered.length; i++) {
    const { chunk, encoding } = state.buffered[i];
    const bytes = toBuffer(chunk, encoding);
    if (tx.writable < bytes.length) return;
    tx.write(bytes);
    if (tx.peerNeedsWake) end.notify();
    s.ahead.push(chunk);
  }
}

/** The chunks of a write as buffers, less those copyAhead already put into the ring. */
function unsent(socket: RingSocket, chunks: { chunk: Buffer | string; encoding: BufferEncoding }[]): Buffer[] {
  const ahead = socket[kState].ahead;
  const out: Buffer[] = [];
  for (const { chunk, encoding } of chunks) {
    if (ahead.length > 0 && ahead[0] === chunk) {
      ahead.shift();
      socket[kState].bytesDispatched += typeof chunk === 'string' ? Buffer.byteLength(chunk, encoding) : chunk.length;
      continue;
    }
    out.push(toBuffer(chunk, encoding));
  }
  return out;
}

/** _write's fast path: as much of `chunk` as the ring takes now, counted as dispatched (all of it,
 *  as net counts a write handed to its handle), or -1 when the general path must take it (an
 *  error to report, or a closed peer to answer).
 *  The first write of a loop turn is published at once (a request, a reply: nothing waits longer
 *  than over TCP); later ones in the same turn are staged and published together, at
 *  PUBLISH_BATCH bytes or at the end of the tick — a stream of small writes otherwise pulled the
 *  ring's tail line away from a polling reader once per write (a quarter of the writer's CPU at
 *  1 KiB). Linux's TCP holds small writes back the same way (autocorking). */
function tryWrite(socket: RingSocket, end: ChannelEnd, chunk: Buffer): number {
  const s = socket[kState];
  const tx = end.channel.tx;
  let n: number;
  try {
    end.wrote?.();
    const turn = loopTurn();
    if (s.writeTurn !== turn) {
      s.writeTurn = turn;
      n = tx.write(chunk); // publishes anything staged with it
      if (tx.peerNeedsWake) end.notify();
    } else {
      n = tx.stage(chunk);
      if (n < chunk.length || tx.staged >= Math.min(PUBLISH_BATCH, tx.capacity >>> 3)) {
        if (tx.publish()) end.notify();
      } else if (!s.publishDue) {
        publishLater(socket);
      }
    }
  } catch {
    return -1;
  }
  s.bytesDispatched += chunk.length;
  internals(socket)._unrefTimer();
  return n;
}

/** Publishes the socket's staged writes at the end of the tick. A process that ends before then
 *  (process.exit(), a SIGKILL, worker.terminate()) runs nothing more: the peer takes them in when
 *  it sees this side gone (Ring.adoptStaged), as a TCP socket's writes were in the kernel. */
function publishLater(socket: RingSocket): void {
  socket[kState].publishDue = true;
  process.nextTick(publishStaged, socket);
}

/** At the end of the tick: what tryWrite staged reaches the peer. A failure is what the next
 *  write of a TCP socket would find after the peer's RST: the same handling as flush's. */
function publishStaged(socket: RingSocket): void {
  const s = socket[kState];
  s.publishDue = false;
  const end = s.end;
  if (!end || end.closed) return;
  const tx = end.channel.tx;
  if (tx.staged === 0) return;
  try {
    if (tx.publish()) end.notify();
  } catch (err) {
    if (err instanceof RingClosedError) {
      if (tx.abort().wakeConsumer) end.notify(); // answered with a reset, which the next call sees
      return;
    }
    socket.destroy(socketError(socket, err, 'write'));
  }
}

/** Hands a write to the connection, as net hands it to its handle: counted in bytesWritten at
 *  once; while connecting it waits (net's _pendingData), counted there. */
function dispatch(socket: RingSocket, write: PendingWrite, data: unknown, encoding: string): void {
  const s = socket[kState];
  s.pending = write;
  if (socket.connecting) {
    internals(socket)._pendingData = data;
    internals(socket)._pendingEncoding = encoding;
    failOnClose(socket, write);
    if (s.end) { // prepared: the bytes go now, the callback after 'connect'
      write.early = true;
      flush(socket);
    }
    return;
  }
  if (!s.end) {
    s.pending = null;
    write.callback(socketClosed());
    return;
  }
  for (const chunk of write.chunks) s.bytesDispatched += chunk.length;
  internals(socket)._unrefTimer();
  flush(socket);
}

function flush(socket: RingSocket): void {
  const s = socket[kState];
  const pending = s.pending;
  const end = s.end;
  if (!pending || !end || end.closed) return;
  const tx = end.channel.tx;
  end.wrote?.();
  const chunks = pending.chunks;
  try {
    for (;;) {
      // Past what is done (and empty chunks): the ring takes the rest in one batch (Ring.writev).
      while (pending.index < chunks.length && pending.offset === chunks[pending.index].length) {
        pending.index++;
        pending.offset = 0;
      }
      if (pending.index >= chunks.length) break;
      let n: number;
      try {
        n = tx.writev(chunks, pending.index, pending.offset);
      } catch (err) {
        if (!(err instanceof RingClosedError)) throw err;
        // The peer closed: what the kernel would take into its send buffer (a ring's worth) is
        // sent and answered with a reset, which the next write sees — or, for a chunk larger than
        // that, the rest of this write (the loop's next ring call throws the reset).
        if (tx.abort().wakeConsumer) end.notify();
        n = Math.min(chunks[pending.index].length - pending.offset, tx.capacity);
      }
      if (tx.peerNeedsWake) end.notify();
      if (n > 0) {
        internals(socket)._unrefTimer();
        advance(pending, n);
        continue;
      }
      const left = chunks[pending.index].length - pending.offset;
      holdLoop(socket); // a write in flight keeps the loop alive, as a libuv write request does
      if (poll(socket)) return; // the poll resumes
      // Wait for a quarter of the ring, not for room for the whole rest: the consumer then
      // wakes us while it still has data to drain, and both sides keep working at once.
      if (tx.prepareWaitSpace(Math.min(left, tx.capacity >>> 2))) {
        sleep(socket);
        return; // wake() resumes
      }
    }
  } catch (err) {
    s.pending = null;
    holdLoop(socket);
    pending.callback(socketError(socket, err, 'write'));
    return;
  }
  if (pending.early) return; // its callback comes after 'connect' (attach)
  s.pending = null;
  if (!s.readWanted) holdLoop(socket); // (while reading, the loop stays held anyway)
  pending.callback();
}

/** Moves a write's position `n` bytes on, across chunk boundaries. */
function advance(pending: PendingWrite, n: number): void {
  while (n > 0) {
    const rest = pending.chunks[pending.index].length - pending.offset;
    if (n < rest) {
      pending.offset += n;
      return;
    }
    n -= rest;
    pending.index++;
    pending.offset = 0;
  }
}

function wake(socket: RingSocket): void {
  const s = socket[kState];
  if (socket.destroyed || !s.end) return;
  s.poll.woken();
  if (s.shutdownDue) {
    // (see _final) The shutdown first; the read after what its completion set off ('finish', and
    // a stream wrapper's report of it, which tls waits for, an immediate later).
    s.shutdownDue();
    process.nextTick(() => setImmediate(wake, socket));
    return;
  }
  // Reads first, as libuv reads before it writes on a socket event: a reset shows as ECONNRESET
  // on 'read' while the socket is reading.
  if (s.readWanted && s.shortReadTurn === loopTurn()) {
    if (!s.wakeDeferred) {
      s.wakeDeferred = true;
      atNextRead(() => {
        s.wakeDeferred = false;
        wake(socket);
      });
    }
  } else if (s.readWanted) pull(socket);
  if (socket.destroyed) return;
  // A vanished peer (see drain): a socket that is not reading learns it too, once nothing it
  // could still read is left, as a TCP socket's pending error surfaces on its next operation.
  if (s.end.vanished && s.end.channel.rx.unread === 0) return void socket.destroy(errnoError('ETIMEDOUT', 'read'));
  if (s.pending) flush(socket);
}

/** Polls instead of sleeping when the policy says so; true while polling. */
function poll(socket: RingSocket): boolean {
  const s = socket[kState];
  if (s.pollScheduled) return true;
  const native = s.end!.platform !== 'threads' && nativePolling();
  // Polling pays when a peer answers within a few µs; with many sockets of this thread waiting
  // at once (a burst of connections), answers come one after another and the link's doorbell
  // serves them all with one wake-up, so a socket beyond the first few sleeps at once.
  if (native && watchCount() >= MAX_WATCHES) return false;
  if (!s.poll.begin(native)) return false;
  s.pollScheduled = true;
  if (!native || !watchNatively(socket)) atNextRead(() => pollTick(socket));
  return true;
}

/** Hands the poll to the addon (ring-poller.ts): it watches the peer's index (and the flags) of
 *  the ring this socket waits on. */
function watchNatively(socket: RingSocket): boolean {
  const s = socket[kState];
  const { rx, tx } = s.end!.channel;
  const reading = s.readWanted, writing = s.pending !== null;
  let words: number[];
  if (reading && writing) {
    const r = rx.watchWords(true), t = tx.watchWords(false);
    words = [r[0], r[1], t[0], t[1]];
  } else {
    words = reading ? rx.watchWords(true) : tx.watchWords(false);
  }
  const id = watchRing(rx.bytes, words, s.poll.budget, (how, cpuMs) => watched(socket, id, how, cpuMs));
  s.watchId = id;
  return id !== 0;
}

function watched(socket: RingSocket, id: number, how: WatchEnd, cpuMs: number): void {
  const s = socket[kState];
  if (s.watchId !== id) return;
  s.watchId = 0;
  s.pollScheduled = false;
  const end = s.end;
  if (socket.destroyed || !end || end.closed || (!s.readWanted && !s.pending)) {
    s.poll.cancel();
    return;
  }
  if (how === WatchEnd.Changed) s.poll.met(cpuMs);
  else if (how === WatchEnd.ChangedLate) s.poll.contended();
  else s.poll.expired();
  wake(socket);
}

function pollTick(socket: RingSocket): void {
  const s = socket[kState];
  s.pollScheduled = false;
  const end = s.end;
  if (socket.destroyed || !end || end.closed || (!s.readWanted && !s.pending)) {
    s.poll.cancel();
    return;
  }
  let ready = true;
  try {
    const { rx, tx } = end.channel;
    ready = (s.readWanted && (rx.unread > 0 || rx.finished || rx.isReset))
      || (s.pending !== null && (tx.writable > 0 || tx.isReset));
  } catch { /* a broken ring, or a reset or close to report: let wake() do it */ }
  if (ready) {
    s.poll.met();
    wake(socket);
  } else if (s.poll.again()) {
    s.pollScheduled = true;
    atNextRead(() => pollTick(socket));
  } else {
    wake(socket); // the window is over: this time the wait sleeps
  }
}

/** Sleeps until the platform wakes this end (the wait is announced already). */
function sleep(socket: RingSocket): void {
  const s = socket[kState];
  s.poll.sleeping();
  s.end!.armWake();
}

/** Ring errors as the errors net reports from the kernel for the same event. */
function socketError(socket: RingSocket, err: unknown, syscall: string): Error {
  if (err instanceof XwayError && err.code === 'ECONNRESET') {
    // Linux reports a reset that follows the peer's FIN (CLOSE_WAIT) as EPIPE, and net with it.
    const rx = socket[kState].end?.channel.rx;
    return errnoError(rx?.finished ? 'EPIPE' : 'ECONNRESET', syscall);
  }
  return err as Error;
}

function internals(socket: net.Socket): NetInternals {
  return socket as unknown as NetInternals;
}
