// Where a ring socket's reads land. Reads are copied into slabs and handed out as views of them
// (like Node's Buffer pool, but for large chunks too); a new slab starts when less than one read's
// worth is left. One slab serves every socket of the thread, so idle connections hold none, and a
// slab lives as long as some chunk cut from it does.
//
// Measured (bench/net, 64 KiB stream, alternating runs): 512 KiB Buffer.allocUnsafeSlow slabs with
// the copy out of the ring done by memcpy (ring/bulk-copy.ts) ran 9–10 GB/s; a pool of the addon's
// external Buffers, returned to a most-recently-freed list when collected, 3.5–4 GB/s (finalizers
// come back only after a GC and a loop turn, so at this rate the pool rarely had a slab to give
// and kept mapping fresh ones); one exact-size Buffer per read 5–7 GB/s. Malloc keeps the freed
// slabs' memory for the next ones, so the copies mostly land in warm pages.

// What frees a slab is V8's GC, dozens at a time, and glibc then gives the top of its heap back to
// the kernel: the next slabs were page-faulted in again, and how many were decided whether a 64 KiB
// stream ran 5 or 17 GB/s (bench:user, page faults counted in the receiving process). So the
// first slab asks the host addon to keep freed heap mapped (native/src/heap.c: glibc's mmap and
// trim thresholds, process-wide, 64 MiB kept at most) — unless XWAY_KEEP_RECEIVE_MEMORY=0, or
// the program's environment already sets those thresholds (MALLOC_MMAP_THRESHOLD_,
// MALLOC_TRIM_THRESHOLD_), or there is no addon.
//
import type { Ring } from '../ring/ring.js';
import { keepHeapMemory } from '../platform/host/native.js';

const SLAB = 512 * 1024;
/** One read takes at most what one libuv read of a TCP socket takes (64 KiB), so a paused socket
 *  reads as far ahead as net's would and leaves the rest in the ring — which decides whether its
 *  close is a FIN or a reset. */
export const READ_MAX = 64 * 1024;
let slab: Buffer | null = null;
let used = 0;
let keptMemory = false;

/** Copies what `rx` holds (at most READ_MAX bytes) and returns it, or null when the ring is empty.
 *  Ring errors (a reset with nothing left to read, a corrupt index) propagate. */
export function readChunk(rx: Ring): Buffer | null {
  if (slab === null || slab.length - used < READ_MAX) {
    if (!keptMemory) {
      keptMemory = true;
      keepHeapMemory();
    }
    slab = Buffer.allocUnsafeSlow(SLAB);
    used = 0;
  }
  const n = rx.readIntoAt(slab, used, READ_MAX);
  if (n === 0) return null;
  const data = slab.subarray(used, used + n);
  used += (n + 7) & ~7;
  return data;
}
