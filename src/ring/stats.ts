// Reading a ring's header as an observer (xway stat, the visualizer): atomic loads only, never a
// store, so watching a ring cannot disturb its peers. Values come from shared memory and are
// reported as found; `consistent` says whether they describe a possible ring.

import { FLAG_CLOSED, FLAG_FIN, FLAG_RST, R, RING_MAGIC, isValidCapacity } from './layout.js';

export interface RingStats {
  capacity: number;
  /** Consumer index (free-running, mod 2^32). */
  head: number;
  /** Producer index (free-running, mod 2^32). */
  tail: number;
  /** Unread bytes (tail - head). */
  used: number;
  finished: boolean;
  reset: boolean;
  /** The consumer closed its end (it reads nothing more). */
  consumerClosed: boolean;
  consumerWaiting: boolean;
  /** Free bytes the producer is waiting for, 0 if it is not waiting. */
  producerWantsSpace: number;
  bytesIn: bigint;
  bytesOut: bigint;
  producerWaits: number;
  producerNotifies: number;
  consumerWaits: number;
  consumerNotifies: number;
  /** Magic, capacity and indices describe a possible ring. */
  consistent: boolean;
}

export function readRingStats(buffer: SharedArrayBuffer, offset: number): RingStats {
  const words = new Uint32Array(buffer, offset, 64);
  const longs = new BigUint64Array(buffer, offset, 32);
  const u32 = (at: number) => Atomics.load(words, at >> 2);
  const u64 = (at: number) => Atomics.load(longs, at >> 3);
  const capacity = u32(R.CAPACITY);
  const head = u32(R.HEAD);
  const tail = u32(R.TAIL);
  const used = (tail - head) >>> 0;
  const flags = u32(R.FLAGS);
  return {
    capacity, head, tail, used,
    finished: (flags & FLAG_FIN) !== 0,
    reset: (flags & FLAG_RST) !== 0,
    consumerClosed: (flags & FLAG_CLOSED) !== 0,
    consumerWaiting: u32(R.DATA_WAITING) !== 0,
    producerWantsSpace: u32(R.SPACE_WANTED),
    bytesIn: u64(R.BYTES_IN),
    bytesOut: u64(R.BYTES_OUT),
    producerWaits: u32(R.PRODUCER_WAITS),
    producerNotifies: u32(R.PRODUCER_NOTIFIES),
    consumerWaits: u32(R.CONSUMER_WAITS),
    consumerNotifies: u32(R.CONSUMER_NOTIFIES),
    consistent: u32(R.MAGIC) === RING_MAGIC && isValidCapacity(capacity) && used <= capacity,
  };
}
