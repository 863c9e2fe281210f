// What a RingSocket hands net.Socket's constructor. net.Socket copies its options with an object
// spread and then reads some thirty keys of the copy. On Node 20 each copy of a non-empty object
// gets a map of its own, so every one of those reads misses V8's inline caches: 5–9 µs per socket
// (bench/net/socket-construct.mjs), against 0.2–0.3 µs for no options at all. A connect's or an accept's
// options rarely hold anything the constructor acts on, so in that case it is given none, and the
// one key it would have used (allowHalfOpen) is applied after; with any other key it gets them all,
// exactly as net.Socket would.

import { getDefaultHighWaterMark } from 'node:stream';

/** Keys net.Socket's constructor (and the Duplex under it) ignores: they steer connect(), or xway. */
const CONNECT_ONLY = new Set([
  'port', 'host', 'path', 'localAddress', 'localPort', 'family', 'hints', 'lookup', 'timeout',
  'autoSelectFamily', 'autoSelectFamilyAttemptTimeout', 'transport', 'ringCapacity',
  // Applied by the RingSocket itself (see constructorOptions' callers).
  'allowHalfOpen', 'pauseOnCreate',
]);

/** The stream's buffer sizes, when they are the default one (an accept passes the server's). */
const HIGH_WATER_MARKS = new Set(['readableHighWaterMark', 'writableHighWaterMark']);

/** `options` when net.Socket's constructor must see them, or undefined when it would do with them
 *  only what it does with none (allowHalfOpen aside, which the caller applies). */
export function constructorOptions<T extends object>(options: T | undefined): T | undefined {
  if (options === undefined || options === null) return undefined;
  for (const key in options) {
    if (CONNECT_ONLY.has(key)) continue;
    if (HIGH_WATER_MARKS.has(key)) {
      const value = (options as Record<string, unknown>)[key];
      if (value === undefined || value === getDefaultHighWaterMark(false)) continue;
    }
    return options;
  }
  return undefined;
}
