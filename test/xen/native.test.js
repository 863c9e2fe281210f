// The Xen primitives of the native addon, on real Xen: run inside dom0 by test/xen/run.sh (npm test
// leaves test/xen/ out). One domain plays both peers: dom0 grants pages to itself and binds an
// interdomain event channel to itself.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const native = require('../../native/build/Release/xway_native.node');
const PAGE = 65536;

function nextEvents(chan, timeoutMs = 5000) {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('no event within ' + timeoutMs + ' ms')), timeoutMs);
    chan.waiter = (ports) => { clearTimeout(t); chan.waiter = null; resolve(ports); };
  });
}

function openChannel() {
  const holder = { waiter: null };
  holder.ch = new native.XenEventChannel((ports) => holder.waiter?.(ports));
  return holder;
}

test('Xen is available inside dom0', () => {
  assert.is(native.xenAvailable(), null);
});

test('event channel: an interdomain loopback notifies each end', async () => {
  const e = openChannel();
  try {
    const a = e.ch.bindUnbound(0);
    const b = e.ch.bindInterdomain(0, a);
    assert.ok(a > 0 && b > 0 && a !== b, `ports ${a} ${b}`);
    // Xen marks a freshly bound interdomain port pending (so no event is lost): let that pass.
    await new Promise((r) => setTimeout(r, 100));
    e.waiter = null;
    let got = nextEvents(e);
    e.ch.notify(a);
    assert.ok((await got).includes(b), 'notifying one end fires the other');
    got = nextEvents(e);
    e.ch.notify(b);
    assert.ok((await got).includes(a));
    // Masked ports are unmasked: a second round arrives too.
    got = nextEvents(e);
    e.ch.notify(a);
    assert.ok((await got).includes(b));
    e.ch.unbind(b);
    e.ch.unbind(a);
    assert.throws(() => e.ch.notify(a), (err) => err.syscall === 'xenevtchn_notify');
  } finally {
    e.ch.close();
  }
  assert.throws(() => e.ch.notify(1), (err) => err.code === 'EBADF');
});

test('grants: pages shared to our own domain and mapped at a slot are the same pages', () => {
  const mem = new WebAssembly.Memory({ initial: 4, maximum: 16, shared: true });
  const view = new Uint8Array(mem.buffer);
  const grefs = native.xenGrantShare(view, PAGE, PAGE, 0, -1, -1);
  assert.is(grefs.length, PAGE / 4096);
  native.xenGrantMap(view, 2 * PAGE, PAGE, 0, grefs, -1, -1);
  view[PAGE + 5] = 42;
  view[PAGE + PAGE - 1] = 7;
  assert.is(view[2 * PAGE + 5], 42);
  assert.is(view[2 * PAGE + PAGE - 1], 7);
  view[2 * PAGE + 100] = 99;
  assert.is(view[PAGE + 100], 99);
  // The mapping survives memory.grow (a shared memory never moves).
  mem.grow(2);
  const v2 = new Uint8Array(mem.buffer);
  v2[PAGE + 6] = 43;
  assert.is(v2[2 * PAGE + 6], 43);
  native.segmentUnmap(v2, 2 * PAGE, PAGE);
  native.segmentUnmap(v2, PAGE, PAGE);
  assert.is(v2[PAGE + 5], 0);
  assert.is(v2[2 * PAGE + 5], 0);
});

test('grants: a bad grant reference fails to map and leaves the slot usable', () => {
  const mem = new WebAssembly.Memory({ initial: 3, maximum: 4, shared: true });
  const view = new Uint8Array(mem.buffer);
  assert.throws(() => native.xenGrantMap(view, PAGE, 4096, 0, [0x7ffffff0], -1, -1), (err) => typeof err.code === 'string' && err.syscall.length > 0);
  view[PAGE] = 1;
  assert.is(view[PAGE], 1);
  assert.throws(() => native.xenGrantMap(view, PAGE, 8192, 0, [1], -1, -1), (err) => err.code === 'ERR_OUT_OF_RANGE');
  assert.throws(() => native.xenGrantShare(view, 100, 4096, 0, -1, -1), (err) => err.code === 'ERR_OUT_OF_RANGE');
});

test('grants: unmapping the sharer clears the notify byte and signals the mapper', async () => {
  const e = openChannel();
  const mem = new WebAssembly.Memory({ initial: 4, maximum: 4, shared: true });
  const view = new Uint8Array(mem.buffer);
  try {
    const a = e.ch.bindUnbound(0);
    const b = e.ch.bindInterdomain(0, a);
    const grefs = native.xenGrantShare(view, PAGE, PAGE, 0, 4096 + 8, a);
    native.xenGrantMap(view, 2 * PAGE, PAGE, 0, grefs, -1, -1);
    view[PAGE + 4096 + 8] = 1;
    assert.is(view[2 * PAGE + 4096 + 8], 1);
    const got = nextEvents(e);
    native.segmentUnmap(view, PAGE, PAGE); // the sharer goes away
    assert.equal(await got, [b]);
    assert.is(view[2 * PAGE + 4096 + 8], 0, 'the notify byte was cleared');
    native.segmentUnmap(view, 2 * PAGE, PAGE);
  } finally {
    e.ch.close();
  }
});

test('XenStore: read, write, directory, permissions, transaction, watch', async () => {
  let onWatch = null;
  const xs = new native.XenStore((path, token) => onWatch?.(path, token));
  try {
    assert.is(xs.read('domid'), '0');
    const base = '/local/domain/0/data/xway-test';
    xs.rm(base);
    assert.is(xs.read(base), null);
    assert.is(xs.directory(base), null);
    xs.write(`${base}/a`, 'one');
    assert.is(xs.read(`${base}/a`), 'one');
    xs.writeAll([[`${base}/t/x`, '1', ['n0', 'r5']], [`${base}/t/y`, '2', null], [`${base}/t/d`, null, null]]);
    assert.equal(xs.directory(`${base}/t`).sort(), ['d', 'x', 'y']);
    assert.equal(xs.getPermissions(`${base}/t/x`), ['n0', 'r5']);
    assert.is(xs.read(`${base}/t/d`), '');
    xs.setPermissions(`${base}/a`, ['b0']);
    assert.equal(xs.getPermissions(`${base}/a`), ['b0']);
    assert.throws(() => xs.setPermissions(`${base}/a`, ['q1']), (err) => err.code === 'ERR_INVALID_ARG_VALUE');
    const seen = [];
    const fired = new Promise((resolve) => {
      onWatch = (path, token) => { seen.push([path, token]); if (path === `${base}/w`) resolve(); };
    });
    xs.watch(`${base}/w`, 'tok');
    xs.write(`${base}/w`, 'x');
    await fired;
    assert.ok(seen.some(([p, t]) => p === `${base}/w` && t === 'tok'));
    xs.unwatch(`${base}/w`, 'tok');
    xs.rm(base);
    assert.is(xs.read(`${base}/a`), null);
  } finally {
    xs.close();
  }
  assert.throws(() => xs.read('domid'), (err) => err.code === 'EBADF');
});

test.run();
