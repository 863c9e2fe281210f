// The control block shared by the main thread and a pair of peer workers: Int32 words, plus the
// producer's total as a Float64 (byte offset 64, so it may exceed 2^32).
export const GO = 0; // main: both sides are ready, start
export const DONE = 1; // producer: finished, total is in the Float64 slot
export const STOP = 2; // ping: round trips over, pong may exit
export const FAILED = 3; // anyone: give up (a side is stuck or the main thread timed out)
export const SENT_BYTE_OFFSET = 64;
export const CONTROL_BYTES = 128;
