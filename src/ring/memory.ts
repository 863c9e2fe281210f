// Shared memories for rings. The first wasm page is reserved (see layout.ts), so a memory for
// `bytes` of rings has one page more than the rings need.

import { RESERVED_BYTES, WASM_PAGE } from './layout.js';
import { XwayRangeError } from '../errors.js';

export interface SharedMemoryOptions {
  /** Bytes available for rings and channels (from offset RESERVED_BYTES on). */
  bytes: number;
  /** Bytes the memory may grow to (rings included); defaults to what `bytes` needs. */
  maximumBytes?: number;
}

/** A shared WebAssembly.Memory with room for `bytes` of rings after the reserved page. */
export function createSharedMemory({ bytes, maximumBytes }: SharedMemoryOptions): WebAssembly.Memory {
  if (!Number.isInteger(bytes) || bytes <= 0) throw new XwayRangeError(`bytes must be a positive integer, got ${bytes}`);
  const initial = Math.ceil((RESERVED_BYTES + bytes) / WASM_PAGE);
  const maximum = maximumBytes === undefined ? initial : Math.ceil((RESERVED_BYTES + maximumBytes) / WASM_PAGE);
  if (maximum < initial || maximum > 65536) {
    throw new XwayRangeError(`maximumBytes must hold bytes and be at most 4 GiB, got ${maximumBytes}`);
  }
  return new WebAssembly.Memory({ initial, maximum, shared: true });
}

const wholeViews = new WeakMap<SharedArrayBuffer, Uint8Array>();

/** One Uint8Array over all of `buffer`, shared by every ring in it: a connection's rings need no
 *  view of their own, and the native poller registers a memory once, not once per ring. A grown
 *  memory has a new buffer, and so a new view. */
export function wholeView(buffer: SharedArrayBuffer): Uint8Array {
  let view = wholeViews.get(buffer);
  if (!view) wholeViews.set(buffer, (view = new Uint8Array(buffer)));
  return view;
}

const wordViews = new WeakMap<SharedArrayBuffer, Uint32Array>();

/** The same as 32-bit words: the rings read their own indices through it (a view per ring would be
 *  two more objects per connection on each side). */
export function wholeWords(buffer: SharedArrayBuffer): Uint32Array {
  let view = wordViews.get(buffer);
  if (!view) wordViews.set(buffer, (view = new Uint32Array(buffer)));
  return view;
}

/** The SharedArrayBuffer behind a shared memory (TypeScript types memory.buffer as ArrayBuffer). */
export function sharedBuffer(memory: WebAssembly.Memory): SharedArrayBuffer {
  const buffer: ArrayBufferLike = memory.buffer;
  if (!(buffer instanceof SharedArrayBuffer)) throw new TypeError('memory must be a shared WebAssembly.Memory');
  return buffer;
}
