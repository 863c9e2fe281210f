// What every JS peer worker shares: the start barrier, the stop/done signals in a small control
// block, the byte pattern and the timed loops. Each worker runs in its own isolate, so a loop
// here only ever sees one peer's callbacks and V8 can inline them.

import { parentPort, workerData } from 'node:worker_threads';
import { DONE, FAILED, GO, SENT_BYTE_OFFSET, STOP } from '../control.mjs';
import { PERIOD, RR_BATCH, rttSummary } from '../shared.mjs';

export { PERIOD, RR_BATCH, badSample, pattern, rttSummary } from '../shared.mjs';

/** Loop iterations between clock reads (performance.now() is not free at 64-byte chunks). */
const CHECK_MASK = 127;
/** A run still going this long past its end has a stuck peer: report failure instead of hanging. */
const GRACE_MS = 5000;

export const opts = workerData;
const ctl = new Int32Array(opts.control);
const sentSlot = new Float64Array(opts.control, SENT_BYTE_OFFSET, 1);
const now = () => performance.now();

/** Tells the main thread this side is set up, then blocks until it says go. */
export function ready() {
  parentPort.postMessage({ ready: true });
  Atomics.wait(ctl, GO, 0);
}

export function report(result) {
  parentPort.postMessage({ result });
}

export const failed = () => Atomics.load(ctl, FAILED) !== 0;
export const fail = () => Atomics.store(ctl, FAILED, 1);

/** Producer side of a stream: offers `chunk` bytes per call until the deadline.
 *  write(offset, len) copies pattern bytes from `offset` and returns how many the peer took. */
export function produce(write) {
  const { chunk, warmMs, durMs } = opts;
  const deadline = now() + warmMs + durMs;
  let s = 0;
  for (let it = 1; ; it++) {
    s += write(s % PERIOD, chunk);
    if ((it & CHECK_MASK) === 0 && (now() > deadline || failed())) break;
  }
  sentSlot[0] = s;
  Atomics.store(ctl, DONE, 1); // publishes sentSlot too (seq-cst store after the plain one)
  return { sent: s };
}

/** Consumer side of a stream: read(s) consumes up to `chunk` bytes at stream position s and
 *  returns how many. Times the bytes that arrive after the warm-up, up to the producer's last. */
export function consume(read) {
  const { warmMs, durMs } = opts;
  const start = now(), mark = start + warmMs, hard = mark + durMs + GRACE_MS;
  let s = 0, t0 = 0, b0 = 0, stuck = false;
  for (let it = 1; ; it++) {
    const n = read(s);
    if (n > 0) s += n;
    else if (Atomics.load(ctl, DONE) !== 0 && s >= sentSlot[0]) break;
    if ((it & CHECK_MASK) === 0) {
      const t = now();
      if (t0 === 0 && t >= mark) { t0 = t; b0 = s; }
      if (t > hard) { stuck = true; fail(); break; }
    }
  }
  const t1 = now();
  if (t0 === 0) { t0 = start; b0 = 0; }
  return { received: s, sent: sentSlot[0], bytes: s - b0, seconds: (t1 - t0) / 1e3, stuck };
}

/** Ping side of the 1-byte round trip, busy-polling. send(b) must not fail on an empty ring;
 *  recv() returns the byte or -1. Returns the median round trip in µs. */
export function ping(send, recv) {
  const { warmMs, durMs } = opts;
  const start = now(), mark = start + warmMs, end = mark + durMs, hard = end + GRACE_MS;
  const samples = new Float64Array(1 << 20);
  let n = 0, bad = 0, trips = 0, stuck = false, t = now();
  outer: for (let i = 0; ; ) {
    for (let k = 0; k < RR_BATCH; k++, i++) {
      const b = i & 255;
      send(b);
      let r, spins = 0;
      while ((r = recv()) < 0) {
        if ((++spins & 0xffff) === 0 && now() > hard) { stuck = true; break outer; }
      }
      if (r !== b) bad++;
    }
    trips += RR_BATCH;
    const t2 = now();
    if (t >= mark && n < samples.length) samples[n++] = (t2 - t) / RR_BATCH;
    t = t2;
    if (t > end) break;
  }
  Atomics.store(ctl, STOP, 1);
  if (stuck) fail();
  return { ...rttSummary(samples.subarray(0, n)), trips, bad, stuck };
}

/** Pong side: echoes every byte until the ping side says stop. */
export function pong(send, recv) {
  const hard = now() + opts.warmMs + opts.durMs + GRACE_MS;
  for (let it = 1; ; it++) {
    const r = recv();
    if (r >= 0) send(r);
    else if ((it & 0xffff) === 0 && (Atomics.load(ctl, STOP) !== 0 || now() > hard)) break;
  }
  return {};
}

export { now };
