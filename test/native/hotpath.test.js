// The addon's hot-path helpers: memcpy between a ring's memory and Buffers (copy.c) and ring-word
// watches (poller.c). Both take addresses and lengths that may come from a peer's numbers, so every
// range is checked against what this process has, and a watch ends when a word changes, when its
// budget runs out, or when cancelled — and never keeps the process alive.
import { spawnSync } from 'node:child_process';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { native } from './util.js';

const memory = () => new WebAssembly.Memory({ initial: 2, maximum: 4, shared: true });

/** Waits for `promise` with the loop held open: a poller alone never holds it (last test). */
async function held(promise) {
  const timer = setInterval(() => {}, 1000);
  try {
    return await promise;
  } finally {
    clearInterval(timer);
  }
}

function throwsRange(fn) {
  try {
    fn();
  } catch (err) {
    assert.instance(err, RangeError, err.message);
    return;
  }
  assert.unreachable('expected a RangeError');
}

test('copyIn / copyOut move bytes between a shared memory and a Buffer', () => {
  const view = new Uint8Array(memory().buffer);
  const src = Buffer.from('hello, ring');
  native.copyIn(view, 70000, src, 7, 4);
  assert.is(Buffer.from(view.subarray(70000, 70004)).toString(), 'ring');
  const dst = Buffer.alloc(8, 0x2e);
  native.copyOut(view, 70000, dst, 2, 4);
  assert.is(dst.toString(), '..ring..');
});

test('copies outside the memory or the buffer are refused, not made', () => {
  const view = new Uint8Array(memory().buffer);
  const buf = Buffer.alloc(16);
  throwsRange(() => native.copyOut(view, view.length - 8, buf, 0, 16)); // past the memory's end
  throwsRange(() => native.copyIn(view, 0, buf, 8, 16)); // past the buffer's end
  throwsRange(() => native.copyOut(view, -1, buf, 0, 1));
  throwsRange(() => native.copyOut(view, 2 ** 40, buf, 0, 1));
  throwsRange(() => native.copyIn(view, 0, buf, 0, 2 ** 33));
  assert.throws(() => native.copyIn({}, 0, buf, 0, 1), TypeError);
});

test('a watch reports a change of either word, once, with what it cost', async () => {
  const mem = memory();
  const words = new Uint32Array(mem.buffer);
  const reports = [];
  let done;
  const finished = new Promise((resolve) => { done = resolve; });
  const poller = new native.RingPoller((list) => {
    for (let i = 0; i < list.length; i += 3) reports.push(list.slice(i, i + 3));
    if (reports.length === 2) done();
  });
  const m = poller.addMemory(new Uint8Array(mem.buffer));
  assert.is(poller.addMemory(new Uint8Array(mem.buffer)), m, 'the same memory keeps its index');
  words[100] = 7;
  words[101] = 9;
  poller.watch(1, m, 400, 7, 404, 9, 5e6);
  poller.watch(2, m, 400, 7, 404, 9, 5e6);
  // Changed before the loop's first look (a later change could meet an expired watch on a
  // loaded machine: the wall-time cap is 1 ms).
  Atomics.store(words, 101, 10);
  await held(finished);
  for (const [, status, cpuNs] of reports) {
    assert.is(status, 1);
    assert.ok(cpuNs >= 0);
  }
  assert.equal(reports.map((r) => r[0]).sort(), [1, 2]);
});

test('a watch whose budget runs out reports 0; a cancelled one reports nothing', async () => {
  const mem = memory();
  const reports = [];
  let done;
  const finished = new Promise((resolve) => { done = resolve; });
  const poller = new native.RingPoller((list) => {
    for (let i = 0; i < list.length; i += 3) reports.push(list[i], list[i + 1]);
    done();
  });
  const m = poller.addMemory(new Uint8Array(mem.buffer));
  poller.watch(3, m, 0, 0, 4, 0, 0);
  poller.watch(4, m, 0, 0, 4, 0, 0);
  poller.cancel(4);
  await held(finished);
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(reports, [3, 0]);
});

test('watched words must lie inside a registered memory, aligned', () => {
  const mem = memory();
  const poller = new native.RingPoller(() => {});
  throwsRange(() => poller.watch(1, 0, 0, 0, 0, 0, 1000)); // no memory registered yet
  const m = poller.addMemory(new Uint8Array(mem.buffer));
  const len = mem.buffer.byteLength;
  throwsRange(() => poller.watch(1, m + 1, 0, 0, 0, 0, 1000));
  throwsRange(() => poller.watch(1, m, len - 2, 0, 0, 0, 1000));
  throwsRange(() => poller.watch(1, m, 0, 0, len, 0, 1000));
  throwsRange(() => poller.watch(1, m, 2, 0, 0, 0, 1000));
  throwsRange(() => poller.watch(1, m, 0, 0, 0, 0, -1));
  assert.throws(() => poller.addMemory(new Uint8Array(4096)), TypeError); // not shared memory
});

test('an open watch does not keep the process alive', () => {
  const script = `
    const native = require(${JSON.stringify(new URL('../../native/build/Release/xway_native.node', import.meta.url).pathname)});
    const mem = new WebAssembly.Memory({ initial: 1, maximum: 1, shared: true });
    const poller = new native.RingPoller(() => { throw new Error('no report expected'); });
    poller.watch(1, poller.addMemory(new Uint8Array(mem.buffer)), 0, 0, 4, 0, 5e6);
  `;
  const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 20_000 });
  assert.is(r.status, 0, r.stderr);
});

test.run();
