// Ring sizes and time limits of connection set-up, shared by both sides.

import { isValidCapacity, MIN_CAPACITY, MAX_CAPACITY, channelByteLength, WASM_PAGE } from '../../ring/layout.js';
import { XwayRangeError } from '../../errors.js';
import { bytesFromEnv } from '../common/limits.js';

export interface HostChannelOptions {
  /** Capacity of each ring (power of two). Default 256 KiB. */
  capacity?: number;
  /** Largest ring capacity a listener grants. Default 16 MiB. */
  maxCapacity?: number;
  /** Set-up must finish within this many milliseconds. Default 5000. */
  setupTimeoutMs?: number;
  /** Set-ups in progress a listener accepts at once; more are refused as busy. Default 64. */
  maxPending?: number;
  /** Ring memory (address space) one link may use. Default 8 GiB (10,000 connections at the
   *  default 256 KiB rings take 5 GiB), or XWAY_RING_MEMORY_PER_LINK. */
  linkBytes?: number;
}

export const DEFAULT_CAPACITY = 256 * 1024;
export const DEFAULT_MAX_CAPACITY = 16 * 1024 * 1024;
export const DEFAULT_LINK_BYTES = 8 * 2 ** 30;
export const DEFAULT_SETUP_TIMEOUT_MS = 5000;

export function resolveOptions(o: HostChannelOptions = {}): Required<HostChannelOptions> {
  const r = {
    capacity: o.capacity ?? DEFAULT_CAPACITY,
    maxCapacity: o.maxCapacity ?? DEFAULT_MAX_CAPACITY,
    setupTimeoutMs: o.setupTimeoutMs ?? DEFAULT_SETUP_TIMEOUT_MS,
    maxPending: o.maxPending ?? 64,
    linkBytes: o.linkBytes ?? bytesFromEnv('XWAY_RING_MEMORY_PER_LINK') ?? DEFAULT_LINK_BYTES,
  };
  for (const key of ['capacity', 'maxCapacity'] as const) {
    if (!isValidCapacity(r[key])) {
      throw new XwayRangeError(`${key} must be a power of two from ${MIN_CAPACITY} to ${MAX_CAPACITY}, got ${r[key]}`);
    }
  }
  for (const key of ['setupTimeoutMs', 'maxPending', 'linkBytes'] as const) {
    if (!Number.isInteger(r[key]) || r[key] <= 0) throw new XwayRangeError(`${key} must be a positive integer, got ${r[key]}`);
  }
  return r;
}

/** Bytes of segment for a channel: the channel rounded up to whole wasm pages. */
export function segmentSize(capacityA: number, capacityB: number): number {
  return Math.ceil(channelByteLength(capacityA, capacityB) / WASM_PAGE) * WASM_PAGE;
}

/** How long a side in set-up polls its control socket for the next message before it lets the
 *  event loop sleep on it (see awaitPolling). The answer is usually tens of microseconds away;
 *  sleeping instead costs a process wake-up, which on a VM is the larger part of set-up. */
export const SETUP_POLL_MS = 0.5;
const SETUP_POLL_STARVED_MS = 0.05;

/** Polls `ctl` once per event-loop turn until `done()` or SETUP_POLL_MS have passed. */
let setupMisses = 0;
let setupPause = 0;

export function pollWhileSettingUp(ctl: { receiveNow(): void }, done: () => boolean): void {
  // Polls that did not pay (the answer came only after the window) pause polling for the next
  // 2, 4, … 64 set-ups, so a CPU-starved machine is not made slower by it.
  if (setupPause > 0) {
    setupPause--;
    return;
  }
  const deadline = performance.now() + SETUP_POLL_MS;
  let last = 0;
  const tick = () => {
    if (done()) {
      setupMisses = 0;
      return;
    }
    try {
      ctl.receiveNow();
    } catch {
      return; // closed meanwhile: its close callback has run
    }
    // A long gap between turns: this process competes for a CPU, maybe with the peer it waits
    // for, and polling on would only slow the peer down.
    const now = performance.now();
    const starved = last !== 0 && now - last > SETUP_POLL_STARVED_MS;
    last = now;
    if (done()) setupMisses = 0;
    else if (now < deadline && !starved) setImmediate(tick);
    else {
      setupMisses = Math.min(setupMisses + 1, 6);
      setupPause = 2 ** setupMisses;
    }
  };
  setImmediate(tick);
}
