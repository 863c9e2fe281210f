// Waiting and waking between threads that share a memory: the wait announcement words in the
// ring header double as futex words, so a wake-up is the core's "must notify" decision followed
// by Atomics.notify, and a waiter that missed it never sleeps (Atomics.wait sees the word already
// cleared). Between processes the host platform replaces Atomics.notify with an event channel.

import type { Ring } from './ring.js';
import { sharedBuffer } from './memory.js';

export type WaitResult = 'ok' | 'not-equal' | 'timed-out';

const wordsByBuffer = new WeakMap<SharedArrayBuffer, Int32Array>();

function words(ring: Ring): Int32Array {
  const buffer = sharedBuffer(ring.memory);
  let view = wordsByBuffer.get(buffer);
  if (!view) wordsByBuffer.set(buffer, (view = new Int32Array(buffer)));
  return view;
}

/** Blocks this thread until the ring has data, end of stream or a reset (or the timeout).
 *  Not for a browser's main thread, where Atomics.wait is forbidden. */
export function waitForData(ring: Ring, timeoutMs = Infinity): WaitResult {
  if (!ring.prepareWaitData()) return 'not-equal';
  const result = Atomics.wait(words(ring), ring.dataWaitIndex, 1, timeoutMs);
  if (result === 'timed-out') ring.cancelWaitData();
  return result;
}

/** Like waitForData without blocking: resolves when woken. */
export async function waitForDataAsync(ring: Ring, timeoutMs = Infinity): Promise<WaitResult> {
  if (!ring.prepareWaitData()) return 'not-equal';
  const { async, value } = Atomics.waitAsync(words(ring), ring.dataWaitIndex, 1, timeoutMs);
  const result = async ? await value : value;
  if (result === 'timed-out') ring.cancelWaitData();
  return result;
}

/** Blocks this thread until `need` bytes are free (or a reset, or the timeout). */
export function waitForSpace(ring: Ring, need: number, timeoutMs = Infinity): WaitResult {
  if (!ring.prepareWaitSpace(need)) return 'not-equal';
  const result = Atomics.wait(words(ring), ring.spaceWaitIndex, need, timeoutMs);
  if (result === 'timed-out') ring.cancelWaitSpace();
  return result;
}

export async function waitForSpaceAsync(ring: Ring, need: number, timeoutMs = Infinity): Promise<WaitResult> {
  if (!ring.prepareWaitSpace(need)) return 'not-equal';
  const { async, value } = Atomics.waitAsync(words(ring), ring.spaceWaitIndex, need, timeoutMs);
  const result = async ? await value : value;
  if (result === 'timed-out') ring.cancelWaitSpace();
  return result;
}

/** Wakes a consumer waiting on `ring` (call when a producer call set ring.peerNeedsWake). */
export function wakeConsumer(ring: Ring): void {
  Atomics.notify(words(ring), ring.dataWaitIndex);
}

/** Wakes a producer waiting for space on `ring`. */
export function wakeProducer(ring: Ring): void {
  Atomics.notify(words(ring), ring.spaceWaitIndex);
}
