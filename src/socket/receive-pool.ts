// Where a ring socket's reads land. Reads are copied into slabs, handed out as views (like Node's
// Buffer pool, but for large chunks too); a new slab starts when less than SLAB_MIN_ROOM is left.
// One slab serves every socket of the thread, so idle connections hold none, and a slab lives only
// as long as some chunk cut from it does. One allocation per SLAB bytes instead of one per read:
// for large reads the allocation, not the copy, was the cost.

import type { Ring } from '../ring/ring.js';

const SLAB = 512 * 1024;
/** One read takes at most what one libuv read of a TCP socket takes (64 KiB), so a paused socket
 *  reads as far ahead as net's would and leaves the rest in the ring — which decides whether its
 *  close is a FIN or a reset. */
const READ_MAX = 64 * 1024;
const SLAB_MIN_ROOM = READ_MAX;
let slab: Buffer | null = null;
let used = 0;

/** Copies what `rx` holds (as much as fits in the slab's room) and returns it, or null when the
 *  ring is empty. Ring errors (a reset with nothing left to read, a corrupt index) propagate. */
export function readChunk(rx: Ring): Buffer | null {
  if (slab === null || slab.length - used < SLAB_MIN_ROOM) {
    slab = Buffer.allocUnsafeSlow(SLAB);
    used = 0;
  }
  const n = rx.readInto(slab.subarray(used, used + READ_MAX));
  if (n === 0) return null;
  const data = slab.subarray(used, used + n);
  used += (n + 7) & ~7;
  return data;
}
