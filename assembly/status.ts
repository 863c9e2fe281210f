// Results of core calls: >= 0 is a value, < 0 is one of these codes.
// src/core/errors.ts maps them to typed JavaScript errors; keep the two lists in step.

/** The caller passed an impossible argument (misaligned address, bad capacity, n > what is available). */
export const E_ARGUMENT: i32 = -1;
/** The header does not describe the ring the caller expects (magic, version or capacity differ). */
export const E_HEADER: i32 = -2;
/** An index read from shared memory is impossible (tail - head > capacity): the peer is broken or hostile. */
export const E_INDEX: i32 = -3;
/** The producer already sent FIN on this ring. */
export const E_SHUTDOWN: i32 = -4;
/** The ring was reset (RST) by either side. */
export const E_RESET: i32 = -5;
/** The consumer closed this ring: what the producer writes now would never be read. */
export const E_CLOSED: i32 = -6;

/** prepareWait results. */
export const READY: i32 = 0; // the condition already holds: do not wait
export const WAIT: i32 = 1; // announced: wait until notified (spurious wake-ups are possible)
