// Where this thread maps shared pages: shared WebAssembly.Memory objects, carved into slots of whole
// wasm pages. A slot is mapped over (MAP_FIXED) with a link's chunk — or a Xen grant — while it
// lives and handed back afterwards. A memory holds at most 4 GiB (wasm32); when none has room, the
// pool grows one, or opens another while the thread's budget allows.

import { WASM_PAGE } from '../../ring/layout.js';
import { XwayError } from '../../errors.js';
import { bytesFromEnv } from './limits.js';

/** Pages in one memory at most: 4 GiB, all a 32-bit wasm memory can address. V8 reserves a shared
 *  memory's maximum up front as address space, not as memory. */
const MAXIMUM_PAGES = 65536;

interface Slot { page: number; pages: number }

/** Where a slot is: a memory of the pool and a byte offset in it. */
export interface Placement {
  memory: WebAssembly.Memory;
  offset: number;
}

class PoolMemory {
  readonly memory = new WebAssembly.Memory({ initial: 1, maximum: MAXIMUM_PAGES, shared: true });
  /** Free slots, sorted by page, never adjacent (merged on release). */
  free: Slot[] = [];

  get pages(): number {
    return this.memory.buffer.byteLength / WASM_PAGE;
  }
}

export class RegionPool {
  readonly #memories: PoolMemory[] = [];
  /** Bytes of address space this pool may use; beyond it, allocate() throws. */
  budget: number;

  /** `budget`: default XWAY_RING_MEMORY, else 32 GiB — of address space, which costs no memory
   *  until pages are touched (eight 4 GiB memories, room for four links at their limit). */
  constructor(budget = bytesFromEnv('XWAY_RING_MEMORY') ?? 32 * 2 ** 30) {
    this.budget = budget;
  }

  /** A page-aligned place with room for `bytes`. */
  allocate(bytes: number): Placement {
    const pages = Math.ceil(bytes / WASM_PAGE);
    for (const m of this.#memories) {
      const i = m.free.findIndex((s) => s.pages >= pages);
      if (i < 0) continue;
      const slot = m.free[i];
      if (slot.pages === pages) m.free.splice(i, 1);
      else m.free[i] = { page: slot.page + pages, pages: slot.pages - pages };
      return { memory: m.memory, offset: slot.page * WASM_PAGE };
    }
    let m = this.#memories.find((x) => x.pages + pages <= MAXIMUM_PAGES);
    if (!m) {
      if ((this.#memories.length + 1) * MAXIMUM_PAGES * WASM_PAGE > Math.max(this.budget, MAXIMUM_PAGES * WASM_PAGE)) {
        throw new XwayError('ERR_XWAY_LINK', `this thread's ring memory budget (${this.budget} bytes of address space) is used up`);
      }
      m = new PoolMemory();
      this.#memories.push(m);
    }
    return { memory: m.memory, offset: m.memory.grow(pages) * WASM_PAGE }; // grow() returns the old size in pages
  }

  release(place: Placement, bytes: number): void {
    const m = this.#memories.find((x) => x.memory === place.memory);
    if (!m) throw new RangeError('not a memory of this pool');
    const slot = { page: place.offset / WASM_PAGE, pages: Math.ceil(bytes / WASM_PAGE) };
    let i = m.free.findIndex((s) => s.page > slot.page);
    if (i < 0) i = m.free.length;
    m.free.splice(i, 0, slot);
    // Merge with the right neighbour, then the left one.
    const right = m.free[i + 1];
    if (right && slot.page + slot.pages === right.page) { slot.pages += right.pages; m.free.splice(i + 1, 1); }
    const left = m.free[i - 1];
    if (left && left.page + left.pages === slot.page) { left.pages += slot.pages; m.free.splice(i, 1); }
  }

  /** The pool's first memory (created on first use). */
  get memory(): WebAssembly.Memory {
    if (this.#memories.length === 0) this.#memories.push(new PoolMemory());
    return this.#memories[0].memory;
  }

  /** Pages currently free, over every memory (for tests and xway stat). */
  get freePages(): number {
    return this.#memories.reduce((sum, m) => sum + m.free.reduce((s, x) => s + x.pages, 0), 0);
  }

  /** A byte view over the whole of `memory` as it is now (it grows). */
  view(memory: WebAssembly.Memory = this.memory): Uint8Array {
    return new Uint8Array(memory.buffer);
  }
}

let pool: RegionPool | undefined;

/** This thread's pool. */
export function regionPool(): RegionPool {
  return (pool ??= new RegionPool());
}
