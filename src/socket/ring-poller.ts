// Native ring watches (native/src/poller.c): a socket that polls its ring while the peer is another
// process hands the two words it waits on to the addon, which looks at them from the event loop
// (yielding the CPU between looks) and calls back once when one changed, the budget of CPU time
// ran out, or the vCPU turned out to be contended. No JS turn per look, and a peer that needs
// this vCPU gets it. Without the addon, and between
// threads of one process (whose peer runs in this very process, woken by Atomics), sockets poll
// with setImmediate ticks instead (ring-socket.ts).

import { hostUnavailableReason, nativeAddon } from '../platform/host/native.js';
import type { RingPoller } from '../platform/host/native-api.js';

/** How a watch ended (native/src/poller.c). */
export const WatchEnd = { Expired: 0, Changed: 1, Contended: 2, ChangedLate: 3 } as const;
export type WatchEnd = (typeof WatchEnd)[keyof typeof WatchEnd];
/** `cpuMs`: the CPU time the watch cost this thread. */
type Done = (how: WatchEnd, cpuMs: number) => void;

let poller: RingPoller | null | undefined;
const waiting = new Map<number, Done>();
/** The addon's index of each memory view seen (registering costs a type check; a watch must not). */
const memories = new WeakMap<Uint8Array, number>();
let nextId = 1;

function nativePoller(): RingPoller | null {
  if (poller !== undefined) return poller;
  poller = null;
  if (hostUnavailableReason() === null) {
    const { RingPoller: Poller } = nativeAddon();
    if (typeof Poller === 'function') poller = new Poller(report);
  }
  return poller;
}

/** Whether watches are native here (the addon loaded and has a poller). */
export function nativePolling(): boolean {
  return nativePoller() !== null;
}

let reporting = false;

/** Whether a watch's callback is running: the poller reports from the loop's idle phase, just
 *  before this turn's poll, where a read it found stands for one libuv would make in that poll. */
export function inWatchReport(): boolean {
  return reporting;
}

/** Every watch that finished this turn; one socket's throw must not strand the others' watches. */
function report(done: number[]): void {
  reporting = true;
  try {
    reportAll(done);
  } finally {
    reporting = false;
  }
}

function reportAll(done: number[]): void {
  let error: unknown = null;
  for (let i = 0; i < done.length; i += 3) {
    const callback = waiting.get(done[i]);
    if (!callback) continue;
    waiting.delete(done[i]);
    try {
      callback(done[i + 1] as WatchEnd, done[i + 2] / 1e6);
    } catch (err) {
      error ??= err;
    }
  }
  if (error !== null) throw error;
}

/**
 * Watches `words` ([address, value, address, value] in `memory`, see Ring.watchWords) for up to
 * `budgetMs` of this thread's CPU time; `done` runs once. Returns the watch's id, or 0 when there is no native
 * poller (the caller polls from JS).
 */
export function watchRing(memory: Uint8Array, words: readonly number[], budgetMs: number, done: Done): number {
  const p = nativePoller();
  if (!p) return 0;
  const id = nextId;
  nextId = nextId >= 0x7fffffff ? 1 : nextId + 1;
  let index = memories.get(memory);
  if (index === undefined) memories.set(memory, (index = p.addMemory(memory)));
  p.watch(id, index, words[0], words[1], words[2], words[3], Math.round(budgetMs * 1e6));
  waiting.set(id, done);
  return id;
}

/** How many watches are running. */
export function watchCount(): number {
  return waiting.size;
}

/** Drops a watch without its callback. */
export function cancelWatch(id: number): void {
  if (!waiting.delete(id)) return;
  poller?.cancel(id);
}
