// The producer of the simulation: a Web Worker that writes the deterministic pattern into the ring
// with the library's zero-copy producer calls (writeSpans / commit), at the page's rate and write
// size, and either sleeps when the ring is full (announce, then Atomics.wait on the ring's own
// futex word until the consumer notifies) or busy-polls.
import { compileCore } from './dist/ring/core.js';
import { Ring } from './dist/ring/ring.js';
import { waitForSpace, wakeConsumer } from './dist/ring/futex.js';
import { BLOCK_BITS, BLOCK_SLOTS, C, MODE_BUSY, Pacer, S, checksumStep, patternByte, sleep } from './sim-shared.js';

self.onmessage = async ({ data }) => {
  const control = new Int32Array(data.control);
  try {
    await compileCore();
    const ring = Ring.attach(data.memory, data.offset, data.capacity);
    self.postMessage({ ready: 'producer' });
    run(ring, control);
    Atomics.store(control, C.P_STATE, S.STOPPED);
  } catch (err) {
    Atomics.store(control, C.P_STATE, S.FAILED);
    self.postMessage({ error: `producer: ${err?.stack ?? err}` });
  }
};

function run(ring, control) {
  const blockMask = (1 << BLOCK_BITS) - 1;
  const slotMask = BLOCK_SLOTS - 1;
  let p32 = 0;       // stream position, low 32 bits
  let sum = 0;       // checksum of the current block so far
  let pending = 0;   // bytes of the current write not yet in the ring
  const pacer = new Pacer();
  const state = (s) => Atomics.store(control, C.P_STATE, s);

  const fill = (view, n) => {
    for (let i = 0; i < n; i++) {
      const b = patternByte(p32);
      view[i] = b;
      sum = checksumStep(sum, b);
      p32 = (p32 + 1) | 0;
      if ((p32 & blockMask) === 0) {
        const tag = p32 >>> BLOCK_BITS;
        const at = C.CHECKPOINTS + 2 * (tag & slotMask);
        Atomics.store(control, at + 1, sum);
        Atomics.store(control, at, tag);
        sum = 0;
      }
    }
  };

  while (Atomics.load(control, C.RUN) === 1) {
    const rate = Atomics.load(control, C.P_RATE);
    const writeSize = Atomics.load(control, C.WRITE_SIZE);
    const busy = Atomics.load(control, C.MODE) === MODE_BUSY;
    if (pending === 0) {
      if (rate === 0) {
        state(S.STALLED);
        pacer.reset();
        sleep(control, 500);
        continue;
      }
      if (rate > 0) {
        pacer.refill(rate, Math.max(writeSize, rate / 10));
        if (pacer.tokens < writeSize) {
          state(S.PACING);
          sleep(control, Math.min(100, ((writeSize - pacer.tokens) * 1000) / rate));
          continue;
        }
        pacer.tokens -= writeSize;
      }
      pending = writeSize;
    }
    const n = Math.min(pending, ring.reserve(pending));
    if (n === 0) {
      if (busy) {
        state(S.SPINNING);
        Atomics.add(control, C.P_SPINS, 1);
        continue;
      }
      state(S.WAITING);
      // Announce, re-check, sleep on the ring's space word until the consumer frees enough.
      waitForSpace(ring, Math.min(pending, ring.capacity), 1000);
      ring.cancelWaitSpace();   // after a wake-up by the page, withdraw the announcement (see consumer.js)
      continue;
    }
    state(S.MOVING);
    const [a, b] = ring.writeSpans(n);
    const first = Math.min(n, a.length);
    fill(a, first);
    if (n > first) fill(b, n - first);
    if (ring.commit(n)) wakeConsumer(ring);   // only when the consumer announced it sleeps
    pending -= n;
    if (pending === 0) Atomics.add(control, C.P_WRITES, 1);
  }
}
