// When a ring socket's events happen, in libuv's terms (used by the ring socket and the links). A TCP socket's reads arrive in the loop's
// poll phase and its 'close' in the close phase (uv_close's callback), after that turn's
// setImmediate callbacks; programs can observe the difference (a 1 ms timer raced against
// 'close', an fs callback against a read). A ring socket has no libuv handle, so the addon lends
// it those phases (native/src/phases.c). Without the addon both fall back to setImmediate.

import { hostUnavailableReason, nativeAddon } from './native.js';
import type { LoopPhases } from './native-api.js';

let phases: LoopPhases | null | undefined;
/** Work for the next poll phase, one per onPoll() call, in order. */
const pollQueue: (() => void)[] = [];
let pollHead = 0;
const closing = new Map<number, () => void>();
let nextId = 1;

function onPoll(): void {
  const fn = pollQueue[pollHead];
  pollQueue[pollHead++] = undefined as unknown as () => void;
  if (pollHead === pollQueue.length) pollQueue.length = pollHead = 0;
  fn?.();
}

function onClose(id: number): void {
  const fn = closing.get(id);
  closing.delete(id);
  fn?.();
}

function loopPhases(): LoopPhases | null {
  if (phases !== undefined) return phases;
  phases = null;
  if (hostUnavailableReason() === null) {
    const { LoopPhases: Phases } = nativeAddon();
    if (typeof Phases === 'function') phases = new Phases(onPoll, onClose);
  }
  return phases;
}

/** The loop's turn (it changes just after each poll phase); without the addon, a new number at
 *  every call, so that nothing is ever taken for "this turn". */
let noTurn = 0;
export function loopTurn(): number {
  const p = loopPhases();
  return p ? p.turn[0] : --noTurn;
}

/** Runs `fn` where libuv would deliver a read that is waiting now: the loop's next poll phase. */
export function atNextRead(fn: () => void): void {
  const p = loopPhases();
  if (!p) return void setImmediate(fn);
  pollQueue.push(fn);
  p.poll();
}

/** Runs `fn` in this turn's close phase, where a TCP handle's close callback would run. */
export function atClose(fn: () => void): void {
  const p = loopPhases();
  if (!p) return void setImmediate(fn);
  const id = nextId;
  nextId = nextId >= 0x7fffffff ? 1 : nextId + 1;
  closing.set(id, fn);
  p.close(id);
}
