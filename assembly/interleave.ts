// Debug builds only: a hook between the two halves of each side of the wait handshake
// (publish, then read the other's announcement; announce, then re-read the index). The tests
// make it stall for random moments, which stretches windows of nanoseconds into microseconds so
// that a wrong ordering loses a wake-up within a test run. The release build (--noAssert)
// compiles every call away, and with it the import.

// @ts-ignore: decorator
@external("env", "interleave")
declare function hook(point: i32): void;

export const AFTER_PUBLISH_TAIL: i32 = 1;
export const AFTER_ANNOUNCE_DATA: i32 = 2;
export const AFTER_PUBLISH_HEAD: i32 = 3;
export const AFTER_ANNOUNCE_SPACE: i32 = 4;

// @ts-ignore: decorator
@inline export function interleave(point: i32): void {
  if (!ASC_NO_ASSERT) hook(point);
}
