// The shared-memory layout, mirrored from assembly/layout.ts for code that reads headers from
// JavaScript (observers such as `xway stat` and the visualizer) and for sizing regions.
// Keep in step with assembly/layout.ts; test/layout.test.js checks the two agree.

export const RING_HEADER = 256;
export const CHANNEL_HEADER = 256;
export const MIN_CAPACITY = 4096;
export const MAX_CAPACITY = 64 << 20;
export const RING_MAGIC = 0x31525758;
export const CHANNEL_MAGIC = 0x48435758;
/** The first wasm page of every memory is never used for rings (the debug core keeps its
 *  assertion messages there, and a zero offset is never a valid ring). */
export const RESERVED_BYTES = 65536;
export const WASM_PAGE = 65536;

/** Byte offsets inside a ring header. */
export const R = {
  MAGIC: 0,
  VERSION: 4,
  CAPACITY: 8,
  FLAGS: 12,
  TAIL: 64,
  PRODUCER_WAITS: 72,
  PRODUCER_NOTIFIES: 76,
  BYTES_IN: 80,
  HEAD: 128,
  CONSUMER_WAITS: 136,
  CONSUMER_NOTIFIES: 140,
  BYTES_OUT: 144,
  DATA_WAITING: 192,
  SPACE_WANTED: 196,
} as const;

/** Byte offsets inside a channel header of each ring's stage record (assembly/layout.ts). */
export const C_STAGE_A = 128;
export const C_STAGE_B = 192;

export const FLAG_FIN = 1;
export const FLAG_RST = 2;
export const FLAG_CLOSED = 4;

/** Bytes one ring of `capacity` occupies (header + data). */
export function ringByteLength(capacity: number): number {
  return RING_HEADER + capacity;
}

/** Bytes one channel occupies: control block + two rings. */
export function channelByteLength(capacityA: number, capacityB: number): number {
  return CHANNEL_HEADER + ringByteLength(capacityA) + ringByteLength(capacityB);
}

export function isValidCapacity(capacity: unknown): capacity is number {
  return typeof capacity === 'number' && Number.isInteger(capacity) && capacity >= MIN_CAPACITY && capacity <= MAX_CAPACITY
    && (capacity & (capacity - 1)) === 0;
}
