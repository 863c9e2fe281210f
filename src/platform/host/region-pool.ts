// Where channel segments live in this thread: one shared WebAssembly.Memory, carved into slots of
// whole wasm pages. A slot is mapped over with a channel's segment (MAP_FIXED) while the channel
// lives and handed back afterwards; the memory grows when no free slot fits.

import { WASM_PAGE } from '../../ring/layout.js';

/** 1 GiB of address space reserved per thread for host channels (V8 reserves a shared memory's
 *  maximum up front, so this is virtual, not resident). */
const MAXIMUM_PAGES = 16384;

interface Slot { page: number; pages: number }

export class RegionPool {
  readonly memory = new WebAssembly.Memory({ initial: 1, maximum: MAXIMUM_PAGES, shared: true });
  /** Free slots, sorted by page, never adjacent (merged on release). */
  #free: Slot[] = [];

  /** A page-aligned byte offset with room for `bytes`. */
  allocate(bytes: number): number {
    const pages = Math.ceil(bytes / WASM_PAGE);
    const i = this.#free.findIndex((s) => s.pages >= pages);
    if (i >= 0) {
      const slot = this.#free[i];
      if (slot.pages === pages) this.#free.splice(i, 1);
      else this.#free[i] = { page: slot.page + pages, pages: slot.pages - pages };
      return slot.page * WASM_PAGE;
    }
    return this.memory.grow(pages) * WASM_PAGE; // grow() returns the old size in pages
  }

  release(offset: number, bytes: number): void {
    const slot = { page: offset / WASM_PAGE, pages: Math.ceil(bytes / WASM_PAGE) };
    let i = this.#free.findIndex((s) => s.page > slot.page);
    if (i < 0) i = this.#free.length;
    this.#free.splice(i, 0, slot);
    // Merge with the right neighbour, then the left one.
    const right = this.#free[i + 1];
    if (right && slot.page + slot.pages === right.page) { slot.pages += right.pages; this.#free.splice(i + 1, 1); }
    const left = this.#free[i - 1];
    if (left && left.page + left.pages === slot.page) { left.pages += slot.pages; this.#free.splice(i, 1); }
  }

  /** Pages currently free (for tests and xway stat). */
  get freePages(): number {
    return this.#free.reduce((sum, s) => sum + s.pages, 0);
  }

  /** A byte view over the whole memory as it is now (it grows). */
  view(): Uint8Array {
    return new Uint8Array(this.memory.buffer);
  }
}

let pool: RegionPool | undefined;

/** This thread's pool. */
export function regionPool(): RegionPool {
  return (pool ??= new RegionPool());
}
