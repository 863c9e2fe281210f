// The consumer of the simulation: a Web Worker that reads the ring in place (readSpans / release),
// checks every byte against the pattern and every 4 KiB block's checksum against the one the
// producer computed, at the page's rate; it sleeps when the ring is empty (announce, then
// Atomics.wait on the ring's futex word until the producer notifies) or busy-polls.
import { compileCore } from './dist/ring/core.js';
import { Ring } from './dist/ring/ring.js';
import { waitForData, wakeProducer } from './dist/ring/futex.js';
import { BLOCK_BITS, BLOCK_SLOTS, C, MODE_BUSY, Pacer, S, checksumStep, patternByte, sleep } from './sim-shared.js';

self.onmessage = async ({ data }) => {
  const control = new Int32Array(data.control);
  try {
    await compileCore();
    const ring = Ring.attach(data.memory, data.offset, data.capacity);
    self.postMessage({ ready: 'consumer' });
    run(ring, control);
    Atomics.store(control, C.C_STATE, S.STOPPED);
  } catch (err) {
    Atomics.store(control, C.C_STATE, S.FAILED);
    self.postMessage({ error: `consumer: ${err?.stack ?? err}` });
  }
};

function run(ring, control) {
  const blockMask = (1 << BLOCK_BITS) - 1;
  const slotMask = BLOCK_SLOTS - 1;
  let p32 = 0;
  let sum = 0;
  let mismatches = 0;
  let blocksOk = 0;
  let blocksBad = 0;
  const pacer = new Pacer();
  const state = (s) => Atomics.store(control, C.C_STATE, s);

  const check = (view, n) => {
    for (let i = 0; i < n; i++) {
      const b = view[i];
      if (b !== patternByte(p32)) mismatches++;
      sum = checksumStep(sum, b);
      p32 = (p32 + 1) | 0;
      if ((p32 & blockMask) === 0) {
        const tag = p32 >>> BLOCK_BITS;
        const at = C.CHECKPOINTS + 2 * (tag & slotMask);
        if (Atomics.load(control, at) === tag && Atomics.load(control, at + 1) === sum) blocksOk++;
        else blocksBad++;
        sum = 0;
      }
    }
  };

  while (Atomics.load(control, C.RUN) === 1) {
    const rate = Atomics.load(control, C.C_RATE);
    const busy = Atomics.load(control, C.MODE) === MODE_BUSY;
    if (rate === 0) {
      state(S.STALLED);
      pacer.reset();
      sleep(control, 500);
      continue;
    }
    const avail = ring.peek(1);   // the cached tail is enough unless the ring looks empty
    if (avail === 0) {
      if (busy) {
        state(S.SPINNING);
        Atomics.add(control, C.C_SPINS, 1);
        continue;
      }
      state(S.WAITING);
      // Announce, re-check, sleep on the ring's data word until the producer commits.
      waitForData(ring, 1000);
      // Woken by the producer the announcement is already withdrawn; woken by the page (a control
      // changed) it is not, and a stale one would earn a notification nobody waits for.
      ring.cancelWaitData();
      continue;
    }
    let n = avail;
    if (rate > 0) {
      // Read in slices of about 20 ms worth of bytes, so a slow consumer moves smoothly.
      const slice = Math.max(16, Math.floor(rate / 50));
      pacer.refill(rate, 2 * slice);   // room for a late wake-up, so the rate holds
      const want = Math.min(avail, slice);
      if (pacer.tokens < want) {
        state(S.PACING);
        sleep(control, Math.min(100, ((want - pacer.tokens) * 1000) / rate));
        continue;
      }
      n = Math.min(avail, Math.floor(pacer.tokens));
      pacer.tokens -= n;
    }
    state(S.MOVING);
    const [a, b] = ring.readSpans(n);
    const first = Math.min(n, a.length);
    check(a, first);
    if (n > first) check(b, n - first);
    if (ring.release(n)) wakeProducer(ring);   // only when the producer announced it sleeps
    Atomics.add(control, C.C_READS, 1);
    Atomics.store(control, C.MISMATCHES, mismatches);
    Atomics.store(control, C.BLOCKS_OK, blocksOk);
    Atomics.store(control, C.BLOCKS_BAD, blocksBad);
  }
}
