// Where a ring's large copies happen. Into and out of a shared memory, V8's TypedArray.set is a
// relaxed atomic memmove (about 10 GB/s here) while C's memcpy does about 30; a native call costs
// some 70 ns, so below BULK_MIN bytes set() is faster. The ring core knows nothing of native code:
// the host platform installs its copier when its addon loads (platform/host/native.ts); without
// one (threads only, a browser, no addon) every copy is a set().

export interface BulkCopier {
  /** `length` bytes of `src` from `srcOffset` to byte `address` of `memory` (a view over it all). */
  copyIn(memory: Uint8Array, address: number, src: Uint8Array, srcOffset: number, length: number): void;
  /** `length` bytes at byte `address` of `memory` to `dst` from `dstOffset`. */
  copyOut(memory: Uint8Array, address: number, dst: Uint8Array, dstOffset: number, length: number): void;
}

/** Copies at least this long go native (measured: native wins from about 1.5 KiB on). */
export const BULK_MIN = 2048;

let copier: BulkCopier | null = null;

export function installBulkCopier(c: BulkCopier | null): void {
  copier = c;
}

export function bulkCopier(): BulkCopier | null {
  return copier;
}
