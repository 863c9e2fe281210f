// A peer that writes garbage into shared memory: every impossible index becomes a typed error,
// nothing outside the ring is touched, and no call hangs. Run against the release core through
// the bindings, and against the debug core (assertions on) through @assemblyscript/loader, which
// decodes an assertion's message and location should validation ever let a bad span through.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import loader from '@assemblyscript/loader';
import { Ring, createSharedMemory, XwayError, XwayRangeError, RESERVED_BYTES } from '../dist/index.js';
import { R } from '../dist/ring/layout.js';
import { throwsCode } from './helpers.js';

const CAP = 4096;
const CANARY = 4096;
const OFFSET = RESERVED_BYTES + CANARY; // canary bytes on both sides of the ring

function guarded() {
  const memory = createSharedMemory({ bytes: 2 * CANARY + Ring.byteLength(CAP) + 2 * CAP });
  const view = new Uint8Array(memory.buffer);
  const after = OFFSET + Ring.byteLength(CAP);
  view.fill(0xa5, RESERVED_BYTES, OFFSET);
  view.fill(0x5a, after, after + CANARY);
  const scratch = after + CANARY; // room for writeFrom/readTo
  const intact = () => view.subarray(RESERVED_BYTES, OFFSET).every((b) => b === 0xa5)
    && view.subarray(after, after + CANARY).every((b) => b === 0x5a);
  return { memory, view, scratch, intact, producer: Ring.create(memory, OFFSET, CAP), consumer: Ring.attach(memory, OFFSET, CAP) };
}

function poke(memory, field, value) {
  new Uint32Array(memory.buffer)[(OFFSET + field) >> 2] = value;
}

test('impossible indices give ERR_XWAY_RING_CORRUPT on both sides', () => {
  const { memory, producer, consumer, intact } = guarded();
  producer.write(new Uint8Array(100));
  poke(memory, R.HEAD, 0x80000000); // tail - head is now far beyond the capacity
  const corrupt = (fn) => throwsCode(assert, fn, 'ERR_XWAY_RING_CORRUPT', XwayError);
  corrupt(() => consumer.read());
  corrupt(() => consumer.readInto(new Uint8Array(10)));
  corrupt(() => consumer.prepareWaitData());
  corrupt(() => producer.write(new Uint8Array(CAP)));
  corrupt(() => producer.prepareWaitSpace(CAP));
  corrupt(() => consumer.release(1));
  poke(memory, R.HEAD, 0);
  poke(memory, R.TAIL, CAP + 1);
  corrupt(() => consumer.readable);
  corrupt(() => Ring.attach(memory, OFFSET, CAP));
  poke(memory, R.MAGIC, 0);
  corrupt(() => Ring.attach(memory, OFFSET, CAP));
  assert.ok(intact());
});

test('a lie about the capacity in the header changes nothing: the trusted capacity is used', () => {
  const { memory, producer, consumer, intact } = guarded();
  poke(memory, R.CAPACITY, 1 << 30);
  assert.is(producer.write(new Uint8Array(2 * CAP).fill(1)), CAP);
  assert.is(consumer.read().length, CAP);
  assert.ok(intact());
});

/** Runs every operation against a ring whose header `scribble()` corrupts between calls. Each
 *  call must succeed or throw a typed xway error; returns how many of each. */
function hammer({ producer, consumer, scratch }, scribble, rounds) {
  const buf = new Uint8Array(CAP * 2);
  const ops = [
    () => producer.write(buf.subarray(0, 1 + (rounds % CAP))),
    () => producer.writeFrom(scratch, CAP),
    () => consumer.readInto(buf),
    () => consumer.readTo(scratch + CAP, CAP),
    () => consumer.read(),
    () => { const [a] = producer.writeSpans(); a.fill(7); producer.commit(a.length); },
    () => { const [a, b] = consumer.readSpans(); consumer.release(a.length + b.length); },
    () => producer.prepareWaitSpace(1 + (rounds % CAP)),
    () => consumer.prepareWaitData(),
    () => consumer.ended,
  ];
  const seen = { ok: 0, typed: 0 };
  for (let i = 0; i < rounds; i++) {
    scribble(i);
    try {
      ops[i % ops.length]();
      seen.ok++;
    } catch (err) {
      if (!(err instanceof XwayError || err instanceof XwayRangeError)) throw err; // e.g. a wasm trap
      seen.typed++;
    }
  }
  return seen;
}

test('random scribbling between calls: typed errors only, nothing outside the ring touched', () => {
  const g = guarded();
  const words = new Uint32Array(g.memory.buffer, OFFSET, 64);
  let x = 12345;
  const seen = hammer(g, () => {
    x ^= x << 13; x ^= x >>> 17; x ^= x << 5;
    if ((x & 3) === 0) words[(x >>> 8) & 63] = (x & 16) ? x : words[(x >>> 8) & 63] + ((x >>> 12) & 0x1fff);
  }, 200_000);
  assert.ok(seen.ok > 1000 && seen.typed > 1000, JSON.stringify(seen));
  assert.ok(g.intact(), 'bytes outside the ring changed');
});

test('a concurrent hostile thread scribbling the header: no trap, no hang, canaries intact', async () => {
  const g = guarded();
  const stop = new SharedArrayBuffer(4);
  const worker = new Worker(new URL('./fixtures/scribbler.js', import.meta.url), { workerData: { memory: g.memory, offset: OFFSET, stop } });
  const done = new Promise((resolve, reject) => { worker.once('message', resolve); worker.once('error', reject); });
  await new Promise((r) => setTimeout(r, 20)); // let it start
  let seen;
  try {
    seen = hammer(g, () => {}, 300_000);
  } finally {
    Atomics.store(new Int32Array(stop), 0, 1);
  }
  const { writes } = await done;
  assert.ok(writes > 10_000, `the scribbler only wrote ${writes} times`);
  assert.ok(seen.typed > 0, JSON.stringify(seen));
  assert.ok(g.intact(), 'bytes outside the ring changed');
});

test('debug core (assertions on, via @assemblyscript/loader): fuzzed headers never trip an assertion', async () => {
  const memory = createSharedMemory({ bytes: 2 * CANARY + Ring.byteLength(CAP) + 2 * CAP });
  const wasm = readFileSync(new URL('../build/xway-core.debug.wasm', import.meta.url));
  const { exports: core } = await loader.instantiate(wasm, { env: { memory, interleave() {} } });
  const view = new Uint8Array(memory.buffer);
  const words = new Uint32Array(memory.buffer, OFFSET, 64);
  const scratch = OFFSET + Ring.byteLength(CAP) + CANARY;
  view.fill(0xa5, RESERVED_BYTES, OFFSET);
  assert.is(core.ringInit(OFFSET, CAP), 0);
  let x = 777, errors = 0;
  for (let i = 0; i < 200_000; i++) {
    x ^= x << 13; x ^= x >>> 17; x ^= x << 5;
    if ((x & 7) === 0) words[(x >>> 8) & 63] = (x & 16) ? x : words[(x >>> 8) & 63] + ((x >>> 12) & 0x1fff);
    const n = (x >>> 4) & (2 * CAP - 1);
    // An assertion failure throws "abort: <message> at assembly/ring.ts:<line>:<col>" here.
    const results = [
      core.ringWrite(OFFSET, CAP, scratch, n),
      core.ringRead(OFFSET, CAP, scratch + CAP, n),
      core.ringCommit(OFFSET, CAP, n & (CAP - 1)),
      core.ringRelease(OFFSET, CAP, n & (CAP - 1)),
      core.ringPrepareWaitData(OFFSET, CAP),
      core.ringPrepareWaitSpace(OFFSET, CAP, 1 + (n & (CAP - 1))),
    ];
    for (const r of results) {
      assert.ok(r >= -6, `unknown status ${r}`);
      if (r < 0) errors++;
    }
  }
  assert.ok(errors > 1000, `only ${errors} errors: the fuzz did not reach the checks`);
  assert.ok(view.subarray(RESERVED_BYTES, OFFSET).every((b) => b === 0xa5));
});

test.run();
