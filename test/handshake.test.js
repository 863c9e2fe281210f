// The wait handshake under stress: a producer and a consumer on a ring of 4096 bytes where
// every byte is a round of "maybe wait, maybe notify". The debug core's interleave hook stalls at
// random between publishing an index and reading the peer's announcement (and between
// announcing and re-reading), so orderings that take nanoseconds in the release core happen
// thousands of times here. Reordering either half of the handshake makes this test lose
// wake-ups (checked when it was written: moving wakeConsumer before the tail store did).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Worker } from 'node:worker_threads';
import { Ring, createSharedMemory, RESERVED_BYTES } from '../dist/index.js';

const WORKER = new URL('./fixtures/handshake-worker.js', import.meta.url);

function side(workerData) {
  return new Promise((resolve, reject) => {
    const worker = new Worker(WORKER, { workerData });
    worker.once('message', resolve);
    worker.once('error', reject);
  });
}

for (const cap of [4096]) {
  test(`no lost wake-up with stalls inside the handshake (both directions of waiting)`, async () => {
    const memory = createSharedMemory({ bytes: Ring.byteLength(cap) + 4 * cap });
    const ring = RESERVED_BYTES;
    Ring.create(memory, ring, cap);
    const scratch = ring + Ring.byteLength(cap);
    const common = { memory, ring, cap, rounds: 6000, maxStall: 3000, waitMs: 2000 };
    const [p, c] = await Promise.all([
      side({ ...common, role: 'producer', scratch }),
      side({ ...common, role: 'consumer', scratch: scratch + 2 * cap }),
    ]);
    assert.is(c.wrong, 0);
    assert.is(c.pos, p.pos, 'every byte arrived');
    assert.is(p.lost + c.lost, 0, `lost wake-ups: producer ${p.lost}, consumer ${c.lost}`);
    assert.ok(p.waits > 500 && c.waits > 500, `only ${p.waits} producer and ${c.waits} consumer waits: the race was not exercised`);
  });
}

test.run();
