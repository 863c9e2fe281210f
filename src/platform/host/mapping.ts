// Mapping a channel segment into this thread's wasm memory, and back out. The one place that
// pairs a pool slot with a MAP_FIXED mapping, so no path can free one without the other.

import { nativeAddon } from './native.js';
import { regionPool } from './region-pool.js';

/** Maps `size` bytes of segment `fd` into a free slot; returns the slot's byte offset. */
export function mapSegment(fd: number, size: number): number {
  const pool = regionPool();
  const offset = pool.allocate(size);
  try {
    nativeAddon().segmentMap(pool.view(), offset, size, fd);
  } catch (err) {
    pool.release(offset, size);
    throw err;
  }
  return offset;
}

/** Replaces the mapping with zero pages and returns the slot to the pool. */
export function unmapSegment(offset: number, size: number): void {
  const pool = regionPool();
  nativeAddon().segmentUnmap(pool.view(), offset, size);
  pool.release(offset, size);
}
