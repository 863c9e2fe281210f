// What the page and its two simulation workers share besides the ring itself: a small control
// block (one SharedArrayBuffer of 32-bit words) and the byte pattern the producer writes and the
// consumer checks. The ring lives in its own shared WebAssembly.Memory, driven by the library's
// wasm core through the same Ring bindings Node uses (served from dist/ring/).

/** Int32 word indices in the control block. */
export const C = {
  GEN: 0,          // bumped on every control change; sleeping workers wait on it
  RUN: 1,          // 1 while the simulation runs
  MODE: 2,         // MODE_NOTIFY or MODE_BUSY
  WRITE_SIZE: 3,   // bytes per producer write
  P_RATE: 4,       // producer bytes/s; 0 = stalled, -1 = as fast as it can
  C_RATE: 5,       // consumer bytes/s; 0 = stalled, -1 = as fast as it can
  P_STATE: 6,      // one of S below
  C_STATE: 7,
  MISMATCHES: 8,   // bytes the consumer found different from the pattern
  BLOCKS_OK: 9,    // 4 KiB blocks whose checksum matched the producer's
  BLOCKS_BAD: 10,  // ... and those that did not
  P_WRITES: 11,    // producer writes finished (a write may take several commits)
  C_READS: 12,     // consumer reads (release calls)
  P_SPINS: 13,     // busy-poll turns that found nothing to do (mod 2^32)
  C_SPINS: 14,
  CHECKPOINTS: 64, // BLOCK_SLOTS pairs [tag, checksum] written by the producer
};
export const MODE_NOTIFY = 0;
export const MODE_BUSY = 1;
export const BLOCK_BITS = 12;            // checksums cover 4 KiB blocks of the stream
export const BLOCK_SLOTS = 1024;         // 4 MiB of blocks: more than the largest ring holds
export const CONTROL_BYTES = (C.CHECKPOINTS + 2 * BLOCK_SLOTS) * 4;

/** Worker states. */
export const S = { STARTING: 0, MOVING: 1, WAITING: 2, SPINNING: 3, PACING: 4, STALLED: 5, STOPPED: 6, FAILED: 7 };
export const STATE_NAMES = ['starting', 'moving bytes', 'waiting (asleep)', 'busy-polling', 'pacing (rate limit)', 'stalled', 'stopped', 'failed'];

/** The byte at stream position p (low 32 bits): a mixing hash, so that bytes shifted by any
 *  multiple of the ring size, or reordered, do not match. */
export function patternByte(p) {
  const x = Math.imul(p ^ (p >>> 16), 0x45d9f3b);
  return (x ^ (x >>> 16)) & 0xff;
}

/** One step of the per-block checksum. */
export function checksumStep(sum, byte) {
  return (Math.imul(sum, 31) + byte) | 0;
}

/** Sleeps up to `ms` in a worker, or until the page changes a control. */
export function sleep(control, ms) {
  const gen = Atomics.load(control, C.GEN);
  Atomics.wait(control, C.GEN, gen, Math.max(0, ms));
}

/** A token bucket: `rate` bytes per second, at most `burst` saved up. */
export class Pacer {
  tokens = 0;
  last = performance.now();
  refill(rate, burst) {
    const now = performance.now();
    this.tokens = Math.min(burst, this.tokens + ((now - this.last) * rate) / 1000);
    this.last = now;
  }
  reset() {
    this.tokens = 0;
    this.last = performance.now();
  }
}
