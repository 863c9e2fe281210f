// Ring: one direction of a connection, a single-producer/single-consumer byte ring in a shared
// WebAssembly.Memory, driven by the wasm core. One thread (or process) uses a Ring as producer,
// the other as consumer; a Ring object itself holds no ring state, only where the ring is.
//
// Every producer and consumer call sets `peerNeedsWake`: true when the other side announced it is
// waiting and must now be notified (how is the platform's business: Atomics.notify between
// threads, an event channel between processes).

import { check, coreFor, READY, type CoreExports } from './core.js';
import { FLAG_CLOSED, FLAG_FIN, FLAG_RST, R, RESERVED_BYTES, RING_HEADER, isValidCapacity, MIN_CAPACITY, MAX_CAPACITY } from './layout.js';
import { XwayError, XwayRangeError } from '../errors.js';
import { readRingStats, type RingStats } from './stats.js';
import { sharedBuffer, wholeView, wholeWords } from './memory.js';
import { BULK_MIN, bulkCopier } from './bulk-copy.js';

export class Ring {
  /** The shared memory the ring lives in. */
  readonly memory: WebAssembly.Memory;
  /** Byte offset of the ring header in the memory. */
  readonly offset: number;
  /** Size of the data area in bytes (a power of two). */
  readonly capacity: number;
  /** Byte offset of the first data byte. */
  readonly dataOffset: number;
  /** Index into an Int32Array over the memory of the word a waiting consumer sleeps on
   *  (Atomics.wait(words, dataWaitIndex, 1)). */
  readonly dataWaitIndex: number;
  /** Same for a producer waiting for space (it sleeps while the word holds what it asked for). */
  readonly spaceWaitIndex: number;
  /** Whether the last call owes the peer a notification. */
  peerNeedsWake = false;

  readonly #core: CoreExports;
  /** The address core calls use: `offset`, or, once revoked, 1 — misaligned, so the core refuses
   *  every call on it without a check on the hot path. */
  #at: number;
  readonly #bytes: Uint8Array;
  /** All of the memory as words (shared by every ring in it); the header is at #word. */
  readonly #words: Uint32Array;
  readonly #word: number;
  readonly #mask: number;
  readonly #dataEnd: number;
  /** Bytes the producer knows are free without asking the core: what the last reserve found, less
   *  what this side wrote since (the consumer only ever frees more). It lets write() make one core
   *  call (the commit) instead of two. Zeroed by anything else that moves the tail, and by revoke. */
  #free = 0;
  /** Bytes copied in past the tail by stage() and not yet published (see stage). */
  #staged = 0;
  /** Word index of this ring's stage record (see useStageRecord), or -1: none. */
  #record = -1;

  /** Lays out a new, empty ring of `capacity` bytes at `offset`. */
  static create(memory: WebAssembly.Memory, offset: number, capacity: number): Ring {
    const ring = new Ring(memory, offset, capacity);
    check(ring.#core.ringInit(offset, capacity), 'Ring.create');
    return ring;
  }

  /** Uses a ring that another thread or process laid out, after checking its header. */
  static attach(memory: WebAssembly.Memory, offset: number, capacity: number): Ring {
    const ring = new Ring(memory, offset, capacity);
    check(ring.#core.ringCheck(offset, capacity), 'Ring.attach');
    return ring;
  }

  /** Bytes a ring of `capacity` occupies in memory (header + data). */
  static byteLength(capacity: number): number {
    return RING_HEADER + capacity;
  }

  private constructor(memory: WebAssembly.Memory, offset: number, capacity: number) {
    if (!(memory instanceof WebAssembly.Memory)) throw new TypeError('memory must be a shared WebAssembly.Memory');
    const buffer = sharedBuffer(memory);
    const size = buffer.byteLength;
    if (!isValidCapacity(capacity)) {
      throw new XwayRangeError(`capacity must be a power of two from ${MIN_CAPACITY} to ${MAX_CAPACITY}, got ${capacity}`);
    }
    if (!Number.isInteger(offset) || offset % 64 !== 0 || offset < RESERVED_BYTES || offset + RING_HEADER + capacity > size) {
      throw new XwayRangeError(
        `offset must be a multiple of 64 from ${RESERVED_BYTES} with the ring inside the memory (${size} bytes), got ${offset}`);
    }
    this.memory = memory;
    this.offset = offset;
    this.#at = offset;
    this.capacity = capacity;
    this.dataOffset = offset + RING_HEADER;
    this.dataWaitIndex = (offset + R.DATA_WAITING) >>> 2; // unsigned: offsets reach 4 GiB
    this.spaceWaitIndex = (offset + R.SPACE_WANTED) >>> 2;
    this.#core = coreFor(memory);
    this.#bytes = wholeView(buffer);
    this.#words = wholeWords(buffer);
    this.#word = offset >>> 2;
    this.#mask = capacity - 1;
    this.#dataEnd = this.dataOffset + capacity;
  }

  // ---- producer ------------------------------------------------------------------------------

  /** Free bytes, re-reading the consumer's index only if fewer than `want` are known free. */
  reserve(want = 1): number {
    return (this.#free = this.#check(this.#core.ringReserve(this.#at, this.capacity, want >>> 0), 'Ring.reserve'));
  }

  /** Free bytes right now. */
  get writable(): number {
    return this.reserve(this.capacity);
  }

  /** Offset in memory where the next byte goes: the start of the first writable span. */
  producerAddress(): number {
    // Computed here rather than by a call into the core: the index is this side's own, and
    // masking keeps even a value a peer scribbled over it inside the data area.
    return this.dataOffset + (this.#words[this.#word + (R.TAIL >> 2)] & this.#mask);
  }

  /** Zero-copy write: views of the free space, in order (the second is empty unless the free
   *  space wraps past the end of the data area). Fill a prefix, then commit(n). */
  writeSpans(want = this.capacity): [Uint8Array, Uint8Array] {
    this.#publishStaged();
    const free = this.reserve(want);
    return this.#spans(this.producerAddress(), free);
  }

  /** Publishes `n` bytes written in place. Returns whether the consumer must be notified. */
  commit(n: number): boolean {
    this.#checkLength(n, 'Ring.commit');
    const owed = this.#publishStaged();
    return (this.peerNeedsWake = this.#commit(n) || owed);
  }

  /** publish(), for the calls that publish or end the stream themselves: whether it owes a wake. */
  #publishStaged(): boolean {
    return this.#staged !== 0 && this.publish();
  }

  #commit(n: number): boolean {
    this.#free = 0; // until the commit succeeds, nothing is known free
    this.peerNeedsWake = this.#check(this.#core.ringCommit(this.#at, this.capacity, n), 'Ring.commit') === 1;
    return this.peerNeedsWake;
  }

  /** Copies as much of `src` as fits into the ring and publishes it (with whatever stage() left
   *  unpublished). Returns the number of bytes of `src` accepted. */
  write(src: Uint8Array): number {
    if (!ArrayBuffer.isView(src)) throw new TypeError('src must be a Uint8Array or Buffer');
    const len = src.byteLength;
    this.peerNeedsWake = false;
    const staged = this.#staged;
    if (len === 0 && staged === 0) return 0;
    let free = this.#free - staged;
    if (free < len) free = this.reserve(staged + len) - staged;
    const n = Math.min(len, free);
    if (n === 0 && staged === 0) return 0;
    if (n > 0) this.#copyIn(src, 0, n, staged);
    if (staged !== 0) this.#unstaged();
    this.#commit(staged + n);
    this.#free = free - n;
    return n;
  }

  /**
   * Copies as much of `src` as fits into the ring without publishing it: the consumer sees it at
   * the next publish() (or the next write, writev or end, which publish it first). A producer that
   * makes many small writes in a row publishes once for several of them, so the consumer's side of
   * the tail's cache line is not pulled over for each (Linux's TCP autocorking, for the same
   * reason). Returns the number of bytes accepted; errors (a reset, a closed consumer) are thrown
   * as write() throws them, and nothing is staged then.
   */
  stage(src: Uint8Array): number {
    if (this.#at === 1 || this.#words[this.#word + (R.FLAGS >> 2)] !== 0) return this.write(src); // it throws
    const len = src.byteLength;
    const staged = this.#staged;
    let free = this.#free - staged;
    if (free < len) free = this.reserve(staged + len) - staged;
    const n = Math.min(len, free);
    if (n <= 0) return 0;
    this.#copyIn(src, 0, n, staged);
    this.#staged = staged + n;
    const r = this.#record;
    if (r >= 0) {
      const words = this.#words;
      if (staged === 0) words[r] = words[this.#word + (R.TAIL >> 2)];
      words[r + 1] = words[r] + this.#staged; // after the bytes: a record never covers an uncopied one
    }
    return n;
  }

  /**
   * Keeps a record of what stage() holds back (two words at `byteOffset`, on a cache line the
   * consumer does not poll: the tail when staging began, and that tail plus the staged bytes), so
   * that the consumer can take those bytes in if this side dies before it publishes them
   * (adoptStaged): a TCP socket's writes are in its kernel once write() returns. Channel sets it
   * for both of its rings; the record is emptied whenever the staged bytes are published.
   * @internal
   */
  useStageRecord(byteOffset: number): void {
    if (!Number.isInteger(byteOffset) || byteOffset % 8 !== 0 || byteOffset < RESERVED_BYTES || byteOffset + 8 > this.#bytes.byteLength) {
      throw new XwayRangeError(`a stage record must be 8 aligned bytes inside the memory, past its first page; got offset ${byteOffset}`);
    }
    this.#record = byteOffset >>> 2;
  }

  /** Nothing is staged any more (published, or dropped with the ring). */
  #unstaged(): void {
    this.#staged = 0;
    const r = this.#record;
    if (r >= 0 && this.#at !== 1) this.#words[r + 1] = this.#words[r];
  }

  /**
   * Consumer side, once the producer is gone (its process, thread or domain died): publishes on
   * its behalf the bytes its stage record says it had copied in and not published. The record is
   * the peer's to write, so it is taken only if it starts at the tail and the core's commit, which
   * checks a length against the free space and the indices as for any producer, accepts it;
   * anything else is ignored. Returns the bytes taken in.
   */
  adoptStaged(): number {
    const r = this.#record;
    if (r < 0 || this.#at === 1) return 0;
    const words = this.#words;
    const n = (words[r + 1] - words[r]) >>> 0;
    if (n === 0 || words[r] !== Atomics.load(words, this.#word + (R.TAIL >> 2))) return 0;
    try {
      this.#check(this.#core.ringCommit(this.#at, this.capacity, n), 'Ring.adoptStaged');
    } catch {
      return 0; // too long for the free space, broken indices, or ended or reset already
    }
    words[r + 1] = words[r];
    return n;
  }

  /** Bytes stage() copied in that are not yet published. */
  get staged(): number {
    return this.#staged;
  }

  /** Publishes what stage() copied in. Returns whether the consumer must be notified. */
  publish(): boolean {
    this.peerNeedsWake = false;
    const n = this.#staged;
    if (n === 0) return false;
    this.#unstaged();
    const free = this.#free;
    this.#commit(n);
    this.#free = free - n;
    return this.peerNeedsWake;
  }

  /**
   * Copies `chunks` (from chunk `index`, byte `offset` of it on) into the ring, as much as fits,
   * and publishes them with one commit. Returns the number of bytes accepted. One core call when
   * the free space this side already knows of holds it all, two otherwise.
   */
  writev(chunks: readonly Uint8Array[], index: number, offset: number): number {
    this.peerNeedsWake = false;
    const staged = this.#staged;
    let want = -offset;
    for (let i = index; i < chunks.length && want < this.capacity; i++) want += chunks[i].byteLength;
    if (want <= 0 && staged === 0) return 0;
    want = Math.max(want, 0);
    let free = this.#free - staged;
    if (free < want) free = this.reserve(staged + want) - staged;
    if (free === 0 && staged === 0) return 0;
    let n = 0;
    for (let i = index; i < chunks.length && n < free; i++) {
      const chunk = chunks[i];
      const from = i === index ? offset : 0;
      const take = Math.min(chunk.byteLength - from, free - n);
      this.#copyIn(chunk, from, take, staged + n);
      n += take;
    }
    if (staged !== 0) this.#unstaged();
    this.#commit(staged + n);
    this.#free = free - n;
    return n;
  }

  /** Copies `length` bytes of `src` from `from` to the ring, `skip` bytes past the tail. */
  #copyIn(src: Uint8Array, from: number, length: number, skip: number): void {
    if (length === 0) return;
    let at = this.producerAddress() + skip;
    if (at >= this.#dataEnd) at -= this.capacity;
    const first = Math.min(length, this.#dataEnd - at);
    const bulk = length >= BULK_MIN ? bulkCopier() : null;
    if (bulk) {
      bulk.copyIn(this.#bytes, at, src, from, first);
      if (length > first) bulk.copyIn(this.#bytes, this.dataOffset, src, from + first, length - first);
      return;
    }
    this.#bytes.set(from === 0 && first === src.byteLength ? src : src.subarray(from, from + first), at);
    if (length > first) this.#bytes.set(src.subarray(from + first, from + length), this.dataOffset);
  }

  /** Copies up to `length` bytes that are already in the same memory at `address` (one
   *  memory.copy inside the core, the fastest path). Returns the number of bytes accepted. */
  writeFrom(address: number, length: number): number {
    const owed = this.#publishStaged();
    this.#free = 0;
    const r = this.#check(this.#core.ringWrite(this.#at, this.capacity, address >>> 0, length >>> 0), 'Ring.writeFrom');
    this.peerNeedsWake = owed || (r & 1) === 1;
    return r >>> 1;
  }

  /** End of stream (FIN). Returns whether the consumer must be notified. */
  end(): boolean {
    const owed = this.#publishStaged();
    this.#free = 0;
    this.peerNeedsWake = this.#check(this.#core.ringShutdown(this.#at, this.capacity), 'Ring.end') === 1 || owed;
    return this.peerNeedsWake;
  }

  /** Announces that the producer is about to wait for `need` free bytes. Returns true if it must
   *  now wait (until notified; wake-ups may be spurious), false if the space is already there. */
  prepareWaitSpace(need: number): boolean {
    this.#checkLength(need, 'Ring.prepareWaitSpace');
    if (this.#staged !== 0) throw new Error('Ring.prepareWaitSpace: publish() what was staged first, or the consumer may never free the space');
    return this.#check(this.#core.ringPrepareWaitSpace(this.#at, this.capacity, need), 'Ring.prepareWaitSpace') !== READY;
  }

  cancelWaitSpace(): void {
    this.#core.ringCancelWaitSpace(this.#at, this.capacity);
  }

  // ---- consumer ------------------------------------------------------------------------------

  /** Readable bytes, re-reading the producer's index only if fewer than `want` are known. */
  peek(want = 1): number {
    return this.#check(this.#core.ringPeek(this.#at, this.capacity, want >>> 0), 'Ring.peek');
  }

  /** Readable bytes right now. */
  get readable(): number {
    return this.peek(this.capacity);
  }

  /** Offset in memory of the next unread byte: the start of the first readable span. */
  consumerAddress(): number {
    return this.dataOffset + (this.#words[this.#word + (R.HEAD >> 2)] & this.#mask);
  }

  /** Zero-copy read: views of the unread bytes, in order. Read a prefix, then release(n). */
  readSpans(want = this.capacity): [Uint8Array, Uint8Array] {
    const avail = this.peek(want);
    return this.#spans(this.consumerAddress(), avail);
  }

  /** Frees `n` bytes read in place. Returns whether the producer must be notified. */
  release(n: number): boolean {
    this.#checkLength(n, 'Ring.release');
    return this.#release(n);
  }

  #release(n: number): boolean {
    this.peerNeedsWake = this.#check(this.#core.ringRelease(this.#at, this.capacity, n), 'Ring.release') === 1;
    return this.peerNeedsWake;
  }

  /** Copies unread bytes into `dst`. Returns the number of bytes copied (0 when empty). */
  readInto(dst: Uint8Array): number {
    if (!ArrayBuffer.isView(dst)) throw new TypeError('dst must be a Uint8Array or Buffer');
    return this.readIntoAt(dst, 0, dst.byteLength);
  }

  /** Copies up to `max` unread bytes into `dst` from byte `at` of it (without a view of its own).
   *  Returns the number of bytes copied (0 when empty). */
  readIntoAt(dst: Uint8Array, at: number, max: number): number {
    this.peerNeedsWake = false;
    const len = Math.min(max, dst.byteLength - at);
    if (len <= 0) return 0;
    const n = Math.min(len, this.peek(len));
    if (n === 0) return 0;
    this.#copyOut(dst, n, at);
    this.#release(n);
    return n;
  }

  /** Everything unread (at most `max` bytes) in a new Buffer, or null when the ring is empty. */
  read(max = this.capacity): Buffer | null {
    this.peerNeedsWake = false;
    const n = Math.min(max, this.peek(Math.min(max, this.capacity)));
    if (n <= 0) return null;
    const out = Buffer.allocUnsafe(n);
    this.#copyOut(out, n);
    this.#release(n);
    return out;
  }

  /** Copies up to `length` unread bytes to `address` in the same memory (memory.copy in the core). */
  readTo(address: number, length: number): number {
    const r = this.#check(this.#core.ringRead(this.#at, this.capacity, address >>> 0, length >>> 0), 'Ring.readTo');
    this.peerNeedsWake = (r & 1) === 1;
    return r >>> 1;
  }

  /** The consumer closes: it will read nothing more, and the producer's next write fails with
   *  RingClosedError (TCP's close() of the receiving side). Returns whether the producer must be
   *  woken to find out. */
  closeConsumer(): boolean {
    this.peerNeedsWake = this.#check(this.#core.ringCloseConsumer(this.#at, this.capacity), 'Ring.closeConsumer') === 1;
    return this.peerNeedsWake;
  }

  /** Announces that the consumer is about to wait for data. Returns true if it must now wait,
   *  false if data, end of stream or a reset is already there. */
  prepareWaitData(): boolean {
    return this.#check(this.#core.ringPrepareWaitData(this.#at, this.capacity), 'Ring.prepareWaitData') !== READY;
  }

  cancelWaitData(): void {
    this.#core.ringCancelWaitData(this.#at, this.capacity);
  }

  // ---- either side ---------------------------------------------------------------------------

  /** Resets the ring (RST): the producer's next call fails with ECONNRESET; the consumer drains
   *  what was published before, then fails too (or reads end of stream, after a FIN). Says which
   *  side, if any, was waiting and must be woken. */
  abort(): { wakeConsumer: boolean; wakeProducer: boolean } {
    // What was staged was written before the reset: the consumer drains it first, as the rest.
    let owed = false;
    try {
      owed = this.#publishStaged();
    } catch {
      this.#unstaged(); // a ring that takes nothing more (closed, reset): dropped, as TCP's queue
    }
    this.#free = 0; // a reset ring takes nothing more
    const wake = this.#check(this.#core.ringAbort(this.#at, this.capacity), 'Ring.abort');
    return { wakeConsumer: owed || (wake & 1) !== 0, wakeProducer: (wake & 2) !== 0 };
  }

  /** The producer has sent end of stream. */
  get finished(): boolean {
    return (this.#flags() & FLAG_FIN) !== 0;
  }

  /** End of stream and every byte read. */
  get ended(): boolean {
    return this.finished && this.peek(1) === 0;
  }

  /** Bytes published and not yet read, without throwing on a reset (0 when the ring is broken). */
  get unread(): number {
    if (this.#at === 1) return 0;
    // The distance the core would find (its checks: an impossible one counts as nothing).
    const words = this.#words, at = this.#word;
    const n = (Atomics.load(words, at + (R.TAIL >> 2)) - Atomics.load(words, at + (R.HEAD >> 2))) >>> 0;
    return n <= this.capacity ? n : 0;
  }

  /** The consumer has closed (see closeConsumer). */
  get consumerClosed(): boolean {
    return (this.#flags() & FLAG_CLOSED) !== 0;
  }

  /** The ring was reset by either side. */
  get isReset(): boolean {
    return (this.#flags() & FLAG_RST) !== 0;
  }

  /** Cuts this object off its ring for good: every later call throws ERR_XWAY_RELEASED. The ring's
   *  memory may then be reused for another connection without this object reaching it. */
  revoke(): void {
    this.#unstaged();
    this.#at = 1;
    this.#free = 0; // or write() would copy into memory that may belong to someone else by now
  }

  /** Whether revoke() was called. */
  get revoked(): boolean {
    return this.#at === 1;
  }

  /** What a side waiting on this ring may watch instead of asking the core each time: the byte
   *  addresses and current values of the peer's index (tail for a consumer waiting for data, head
   *  for a producer waiting for space) and of the flags. Either changing means: look again. */
  watchWords(consumer: boolean): [number, number, number, number] {
    const index = consumer ? R.TAIL : R.HEAD;
    const words = this.#words, at = this.#word;
    return [this.offset + index, words[at + (index >> 2)], this.offset + R.FLAGS, words[at + (R.FLAGS >> 2)]];
  }

  /** A byte view over the ring's memory (as large as it was when this object was made). */
  get bytes(): Uint8Array {
    return this.#bytes;
  }

  /** Counters and indices, read without disturbing either side. */
  stats(): RingStats {
    return readRingStats(sharedBuffer(this.memory), this.offset);
  }

  #check(status: number, what: string): number {
    if (status < 0 && this.#at === 1) throw new XwayError('ERR_XWAY_RELEASED', `${what}: this ring was released (its connection closed)`);
    return check(status, what);
  }

  /** FIN, RST and CLOSED, read here rather than by a core call: a connection asks a few dozen
   *  times over its life, and the word is only compared. */
  #flags(): number {
    if (this.#at === 1) this.#check(-1, 'Ring.flags'); // throws: released
    return Atomics.load(this.#words, this.#word + (R.FLAGS >> 2)) & (FLAG_FIN | FLAG_RST | FLAG_CLOSED);
  }

  #spans(address: number, length: number): [Uint8Array, Uint8Array] {
    const first = Math.min(length, this.#dataEnd - address);
    return [
      this.#bytes.subarray(address, address + first),
      this.#bytes.subarray(this.dataOffset, this.dataOffset + length - first),
    ];
  }

  #copyOut(dst: Uint8Array, n: number, into = 0): void {
    const at = this.consumerAddress();
    const first = Math.min(n, this.#dataEnd - at);
    if (n <= 64 && first === n) {
      // Small reads: a byte loop beats allocating a view for TypedArray.set.
      const bytes = this.#bytes;
      for (let i = 0; i < n; i++) dst[into + i] = bytes[at + i];
      return;
    }
    const bulk = n >= BULK_MIN ? bulkCopier() : null;
    if (bulk) {
      bulk.copyOut(this.#bytes, at, dst, into, first);
      if (n > first) bulk.copyOut(this.#bytes, this.dataOffset, dst, into + first, n - first);
      return;
    }
    dst.set(this.#bytes.subarray(at, at + first), into);
    if (n > first) dst.set(this.#bytes.subarray(this.dataOffset, this.dataOffset + n - first), into + first);
  }

  #checkLength(n: number, what: string): void {
    if (!Number.isInteger(n) || n < 0 || n > this.capacity) {
      throw new XwayRangeError(`${what}: length must be an integer from 0 to ${this.capacity}, got ${n}`);
    }
  }
}
