// The single-producer / single-consumer byte ring.
//
// One side only ever produces (advances tail), the other only consumes (advances head); each index
// is published with a sequentially consistent atomic store, so a reader that sees the new index
// also sees the bytes written before it. There are no locks and no loops: every call finishes in
// a bounded number of steps whatever a peer writes into the shared header.
//
// Untrusted peer: the other side can write anything into the header. Every address is therefore
// computed from the caller's trusted `cap` (never from the header) and masked into the data area,
// and every distance between indices read from shared memory is checked against `cap`. The
// assert()s state the resulting invariants; they vanish from the release build (--noAssert) and
// trap in the debug build, which the corruption tests run so that a hole in validation shows up.
//
// Notification suppression (event-index style, but with flags): before sleeping, a side announces
// it is about to wait (R_DATA_WAITING / R_SPACE_WANTED) and then re-checks the ring. The other side
// publishes its index and then reads the announcement. With sequentially consistent atomics at
// least one of them sees the other's store, so either the waiter finds the condition true and
// does not sleep, or the other side sees the announcement and owes a notification: no lost
// wake-ups, and no notification while nobody waits.
//
// Teardown follows TCP's: FIN ends the stream after every byte before it; RST resets the
// connection, but the consumer still drains what was published before it (TCP delivers what
// reached the receive queue ahead of a reset) and then sees the reset — or end of stream if FIN
// came first, as a Linux socket reads EOF after FIN whatever follows. CLOSED is the consumer's
// close(): the producer's next write finds it and the socket layer answers with RST, as a kernel
// answers data sent to a closed socket.

import {
  CACHE_LINE, RING_MAGIC, RING_VERSION, RING_HEADER, MIN_CAPACITY, MAX_CAPACITY,
  R_MAGIC, R_VERSION, R_CAPACITY, R_FLAGS,
  R_TAIL, R_HEAD_CACHE, R_PRODUCER_WAITS, R_PRODUCER_NOTIFIES, R_BYTES_IN,
  R_HEAD, R_TAIL_CACHE, R_CONSUMER_WAITS, R_CONSUMER_NOTIFIES, R_BYTES_OUT,
  R_DATA_WAITING, R_SPACE_WANTED, FLAG_FIN, FLAG_RST, FLAG_CLOSED,
} from "./layout";
import { E_ARGUMENT, E_HEADER, E_INDEX, E_SHUTDOWN, E_RESET, E_CLOSED, READY, WAIT } from "./status";
import { interleave, AFTER_PUBLISH_TAIL, AFTER_ANNOUNCE_DATA, AFTER_PUBLISH_HEAD, AFTER_ANNOUNCE_SPACE } from "./interleave";

// ---- argument checks -------------------------------------------------------------------------

/** True when (ring, cap) cannot name a ring: misaligned, capacity not a power of two in range,
 *  or the ring would run past the 32-bit address space. Cheap enough for every call. */
// @ts-ignore: decorator
@inline function badRing(ring: u32, cap: u32): bool {
  return (ring & (CACHE_LINE - 1)) != 0
    || cap < MIN_CAPACITY || cap > MAX_CAPACITY || (cap & (cap - 1)) != 0
    || <u64>ring + <u64>RING_HEADER + <u64>cap > <u64>0x1_0000_0000;
}

/** True when [addr, addr+len) is not inside the memory as it is now. */
// @ts-ignore: decorator
@inline function outsideMemory(addr: u32, len: u32): bool {
  return <u64>addr + <u64>len > (<u64>memory.size() << 16);
}

// Counters are statistics for observers, written by one side only: plain stores suffice (an
// aligned store does not tear), and a sequentially consistent store would cost a locked
// instruction on every commit and release.
// @ts-ignore: decorator
@inline function bump(addr: usize): void {
  store<u32>(addr, load<u32>(addr) + 1);
}

// @ts-ignore: decorator
@inline function min32(a: u32, b: u32): u32 {
  return a < b ? a : b;
}

// ---- set-up ----------------------------------------------------------------------------------

/** Writes a fresh header for a ring of `cap` bytes at `ring`. */
export function ringInit(ring: u32, cap: u32): i32 {
  if (badRing(ring, cap) || outsideMemory(ring, RING_HEADER + cap)) return E_ARGUMENT;
  memory.fill(ring, 0, RING_HEADER);
  store<u32>(ring + R_VERSION, RING_VERSION);
  store<u32>(ring + R_CAPACITY, cap);
  atomic.store<u32>(ring + R_MAGIC, RING_MAGIC); // last: a ring is valid once its magic is there
  return 0;
}

/** Checks that the header at `ring` describes a ring of `cap` bytes (the attaching side's check). */
export function ringCheck(ring: u32, cap: u32): i32 {
  if (badRing(ring, cap) || outsideMemory(ring, RING_HEADER + cap)) return E_ARGUMENT;
  if (atomic.load<u32>(ring + R_MAGIC) != RING_MAGIC
    || load<u32>(ring + R_VERSION) != RING_VERSION
    || load<u32>(ring + R_CAPACITY) != cap) return E_HEADER;
  const used = atomic.load<u32>(ring + R_TAIL) - atomic.load<u32>(ring + R_HEAD);
  return used > cap ? E_INDEX : 0;
}

/** FIN, RST and CLOSED bits, for either side. */
export function ringFlags(ring: u32, cap: u32): i32 {
  if (badRing(ring, cap)) return E_ARGUMENT;
  return <i32>(atomic.load<u32>(ring + R_FLAGS) & (FLAG_FIN | FLAG_RST | FLAG_CLOSED));
}

// ---- producer --------------------------------------------------------------------------------

/** Free bytes as the producer sees them. The producer keeps a private copy of head on its own
 *  cache line and re-reads the consumer's line only when that copy says there is less than
 *  `want` free: while the ring has room, the consumer's line is not touched. */
function producerFree(ring: u32, cap: u32, want: u32): i32 {
  const tail = load<u32>(ring + R_TAIL);
  let used = tail - load<u32>(ring + R_HEAD_CACHE);
  if (used > cap || cap - used < want) {
    const head = atomic.load<u32>(ring + R_HEAD);
    used = tail - head;
    if (used > cap) return E_INDEX;
    store<u32>(ring + R_HEAD_CACHE, head);
  }
  return <i32>(cap - used);
}

/** Error code for a producer call on a ring that is reset, shut down or closed by its
 *  consumer, else 0. */
// @ts-ignore: decorator
@inline function producerBlocked(ring: u32): i32 {
  const flags = atomic.load<u32>(ring + R_FLAGS);
  if (flags == 0) return 0;
  if (flags & FLAG_RST) return E_RESET;
  if (flags & FLAG_FIN) return E_SHUTDOWN;
  if (flags & FLAG_CLOSED) return E_CLOSED;
  return 0;
}

/** After the producer published new bytes or FIN: 1 if the consumer announced a wait and must be
 *  notified (the announcement is consumed here, so it is owed exactly once), else 0. */
function wakeConsumer(ring: u32): i32 {
  if (atomic.load<u32>(ring + R_DATA_WAITING) == 0) return 0;
  if (atomic.xchg<u32>(ring + R_DATA_WAITING, 0) == 0) return 0;
  bump(ring + R_PRODUCER_NOTIFIES);
  return 1;
}

// @ts-ignore: decorator
@inline function publishTail(ring: u32, n: u32): i32 {
  atomic.store<u32>(ring + R_TAIL, load<u32>(ring + R_TAIL) + n);
  store<u64>(ring + R_BYTES_IN, load<u64>(ring + R_BYTES_IN) + n);
  interleave(AFTER_PUBLISH_TAIL);
  return wakeConsumer(ring);
}

/** Free bytes (>= 0). Re-reads head if fewer than `want` are known to be free. */
export function ringReserve(ring: u32, cap: u32, want: u32): i32 {
  if (badRing(ring, cap)) return E_ARGUMENT;
  const blocked = producerBlocked(ring);
  if (blocked) return blocked;
  return producerFree(ring, cap, want);
}

/** Address where the next byte will be written (the start of the first writable span). */
export function ringProducerAddress(ring: u32, cap: u32): i32 {
  if (badRing(ring, cap)) return E_ARGUMENT;
  return <i32>(ring + RING_HEADER + (load<u32>(ring + R_TAIL) & (cap - 1)));
}

/** Publishes `n` bytes written in place after ringReserve. Returns 1 if the consumer must be
 *  notified, else 0. */
export function ringCommit(ring: u32, cap: u32, n: u32): i32 {
  if (badRing(ring, cap)) return E_ARGUMENT;
  const blocked = producerBlocked(ring);
  if (blocked) return blocked;
  if (n == 0) return 0;
  const free = producerFree(ring, cap, n);
  if (free < 0) return free;
  if (n > <u32>free) return E_ARGUMENT;
  assert(n <= cap, "commit larger than the ring");
  return publishTail(ring, n);
}

/** Copies up to `len` bytes from wasm memory at `src` into the ring and publishes them.
 *  Returns (bytes copied << 1) | notify-consumer. */
export function ringWrite(ring: u32, cap: u32, src: u32, len: u32): i32 {
  if (badRing(ring, cap) || outsideMemory(src, len)) return E_ARGUMENT;
  const blocked = producerBlocked(ring);
  if (blocked) return blocked;
  if (len == 0) return 0;
  const free = producerFree(ring, cap, len);
  if (free <= 0) return free;
  const n = min32(len, <u32>free);
  const data = ring + RING_HEADER;
  const at = load<u32>(ring + R_TAIL) & (cap - 1);
  const first = min32(n, cap - at);
  assert(n <= cap && at + first <= cap, "write span outside the ring");
  memory.copy(data + at, src, first);
  if (n > first) memory.copy(data, src + first, n - first);
  return <i32>(n << 1) | publishTail(ring, n);
}

/** Announces that the producer will wait for at least `need` free bytes (1..cap). Returns WAIT
 *  (sleep until notified, then cancel or re-check) or READY (the space is already there). */
export function ringPrepareWaitSpace(ring: u32, cap: u32, need: u32): i32 {
  if (badRing(ring, cap) || need == 0 || need > cap) return E_ARGUMENT;
  if (atomic.load<u32>(ring + R_FLAGS) & (FLAG_RST | FLAG_CLOSED)) return READY;
  atomic.store<u32>(ring + R_SPACE_WANTED, need);
  bump(ring + R_PRODUCER_WAITS); // counts announcements: each notification answers one of them
  interleave(AFTER_ANNOUNCE_SPACE);
  // Fresh read of head (not the cache): this is the half of the handshake that must see the
  // consumer's latest release.
  const used = load<u32>(ring + R_TAIL) - atomic.load<u32>(ring + R_HEAD);
  if (used > cap) {
    atomic.store<u32>(ring + R_SPACE_WANTED, 0);
    return E_INDEX;
  }
  if (cap - used >= need || (atomic.load<u32>(ring + R_FLAGS) & (FLAG_RST | FLAG_CLOSED)) != 0) {
    atomic.store<u32>(ring + R_SPACE_WANTED, 0);
    return READY;
  }
  return WAIT;
}

/** Withdraws the producer's announcement (after a time-out or a wake-up). */
export function ringCancelWaitSpace(ring: u32, cap: u32): i32 {
  if (badRing(ring, cap)) return E_ARGUMENT;
  atomic.store<u32>(ring + R_SPACE_WANTED, 0);
  return 0;
}

/** End of stream from the producer. Returns 1 if the consumer must be notified. */
export function ringShutdown(ring: u32, cap: u32): i32 {
  if (badRing(ring, cap)) return E_ARGUMENT;
  atomic.or<u32>(ring + R_FLAGS, FLAG_FIN);
  return wakeConsumer(ring);
}

// ---- consumer --------------------------------------------------------------------------------

/** Readable bytes as the consumer sees them; re-reads tail only when the private copy says
 *  fewer than `want` are there. */
function consumerAvailable(ring: u32, cap: u32, want: u32): i32 {
  const head = load<u32>(ring + R_HEAD);
  let avail = load<u32>(ring + R_TAIL_CACHE) - head;
  if (avail > cap || avail < want) {
    const tail = atomic.load<u32>(ring + R_TAIL);
    avail = tail - head;
    if (avail > cap) return E_INDEX;
    store<u32>(ring + R_TAIL_CACHE, tail);
  }
  return <i32>avail;
}

/** What an empty ring reads as: 0 (nothing yet, or end of stream when FIN is set), or E_RESET
 *  once a reset arrived without FIN before it. */
// @ts-ignore: decorator
@inline function consumerEmpty(ring: u32): i32 {
  const flags = atomic.load<u32>(ring + R_FLAGS);
  return (flags & FLAG_RST) != 0 && (flags & FLAG_FIN) == 0 ? E_RESET : 0;
}

/** After the consumer released bytes: 1 if the producer waits for space that is now there. */
function wakeProducer(ring: u32, cap: u32): i32 {
  const wanted = atomic.load<u32>(ring + R_SPACE_WANTED);
  if (wanted == 0) return 0;
  // The producer is (about to be) asleep, so its tail is stable; read it fresh. An impossible
  // value means a broken peer: wake it and let it find the error itself.
  const used = atomic.load<u32>(ring + R_TAIL) - load<u32>(ring + R_HEAD);
  if (used <= cap && wanted <= cap && cap - used < wanted) return 0;
  if (atomic.xchg<u32>(ring + R_SPACE_WANTED, 0) == 0) return 0;
  bump(ring + R_CONSUMER_NOTIFIES);
  return 1;
}

// @ts-ignore: decorator
@inline function publishHead(ring: u32, cap: u32, n: u32): i32 {
  atomic.store<u32>(ring + R_HEAD, load<u32>(ring + R_HEAD) + n);
  store<u64>(ring + R_BYTES_OUT, load<u64>(ring + R_BYTES_OUT) + n);
  interleave(AFTER_PUBLISH_HEAD);
  return wakeProducer(ring, cap);
}

/** Readable bytes (>= 0). Zero with FIN set in ringFlags means end of stream; after a reset the
 *  bytes published before it stay readable, then E_RESET. */
export function ringPeek(ring: u32, cap: u32, want: u32): i32 {
  if (badRing(ring, cap)) return E_ARGUMENT;
  const avail = consumerAvailable(ring, cap, want);
  return avail == 0 ? consumerEmpty(ring) : avail;
}

/** Address of the next unread byte (the start of the first readable span). */
export function ringConsumerAddress(ring: u32, cap: u32): i32 {
  if (badRing(ring, cap)) return E_ARGUMENT;
  return <i32>(ring + RING_HEADER + (load<u32>(ring + R_HEAD) & (cap - 1)));
}

/** Frees `n` bytes read in place after ringPeek. Returns 1 if the producer must be notified. */
export function ringRelease(ring: u32, cap: u32, n: u32): i32 {
  if (badRing(ring, cap)) return E_ARGUMENT;
  if (n == 0) return 0;
  const avail = consumerAvailable(ring, cap, n);
  if (avail < 0) return avail;
  if (n > <u32>avail) return E_ARGUMENT;
  assert(n <= cap, "release larger than the ring");
  return publishHead(ring, cap, n);
}

/** Copies up to `len` bytes out of the ring to wasm memory at `dst` and frees them.
 *  Returns (bytes copied << 1) | notify-producer. */
export function ringRead(ring: u32, cap: u32, dst: u32, len: u32): i32 {
  if (badRing(ring, cap) || outsideMemory(dst, len)) return E_ARGUMENT;
  if (len == 0) return 0;
  const avail = consumerAvailable(ring, cap, len);
  if (avail == 0) return consumerEmpty(ring);
  if (avail < 0) return avail;
  const n = min32(len, <u32>avail);
  const data = ring + RING_HEADER;
  const at = load<u32>(ring + R_HEAD) & (cap - 1);
  const first = min32(n, cap - at);
  assert(n <= cap && at + first <= cap, "read span outside the ring");
  memory.copy(dst, data + at, first);
  if (n > first) memory.copy(dst + first, data, n - first);
  return <i32>(n << 1) | publishHead(ring, cap, n);
}

/** Announces that the consumer will wait for data. Returns WAIT or READY (data, FIN or RST is
 *  already there). */
export function ringPrepareWaitData(ring: u32, cap: u32): i32 {
  if (badRing(ring, cap)) return E_ARGUMENT;
  atomic.store<u32>(ring + R_DATA_WAITING, 1);
  bump(ring + R_CONSUMER_WAITS); // counts announcements: each notification answers one of them
  interleave(AFTER_ANNOUNCE_DATA);
  const avail = atomic.load<u32>(ring + R_TAIL) - load<u32>(ring + R_HEAD);
  if (avail > cap) {
    atomic.store<u32>(ring + R_DATA_WAITING, 0);
    return E_INDEX;
  }
  if (avail != 0 || (atomic.load<u32>(ring + R_FLAGS) & (FLAG_FIN | FLAG_RST)) != 0) {
    atomic.store<u32>(ring + R_DATA_WAITING, 0);
    return READY;
  }
  return WAIT;
}

/** Withdraws the consumer's announcement. */
export function ringCancelWaitData(ring: u32, cap: u32): i32 {
  if (badRing(ring, cap)) return E_ARGUMENT;
  atomic.store<u32>(ring + R_DATA_WAITING, 0);
  return 0;
}

/** The consumer closes (TCP's close() of the reading side): it will read nothing more. Returns 1
 *  if a producer waiting for space must be woken to find out. */
export function ringCloseConsumer(ring: u32, cap: u32): i32 {
  if (badRing(ring, cap)) return E_ARGUMENT;
  atomic.or<u32>(ring + R_FLAGS, FLAG_CLOSED);
  return atomic.xchg<u32>(ring + R_SPACE_WANTED, 0) != 0 ? 1 : 0;
}

// ---- either side -----------------------------------------------------------------------------

/** Resets the ring (RST). Returns bit 0 if the consumer, bit 1 if the producer must be woken. */
export function ringAbort(ring: u32, cap: u32): i32 {
  if (badRing(ring, cap)) return E_ARGUMENT;
  atomic.or<u32>(ring + R_FLAGS, FLAG_RST);
  let wake = 0;
  if (atomic.xchg<u32>(ring + R_DATA_WAITING, 0) != 0) wake |= 1;
  if (atomic.xchg<u32>(ring + R_SPACE_WANTED, 0) != 0) wake |= 2;
  return wake;
}
