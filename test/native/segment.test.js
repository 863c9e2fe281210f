// Shared pages mapped into shared WebAssembly.Memory, across two real processes.
import fs from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Conn, listen, native, spawnFixture, withTimeout } from './util.js';

const PAGE = 65536;

function throwsCode(fn, code, ctor) {
  try {
    fn();
  } catch (err) {
    assert.is(err.code, code, `expected code ${code}, got ${err.code}: ${err.message}`);
    if (ctor) assert.instance(err, ctor);
    return err;
  }
  assert.unreachable(`expected an error with code ${code}`);
}

test('platform flags', () => {
  assert.is(native.platformAvailable, true);
  assert.is(native.unavailableReason, null);
});

test('segment shared with a child process survives memory.grow and unmaps to zeroes', async () => {
  const memory = new WebAssembly.Memory({ initial: 4, maximum: 64, shared: true });
  const seg = native.segmentCreate(PAGE);
  native.segmentMap(new Uint8Array(memory.buffer), PAGE, PAGE, seg);
  const mine = () => new Uint8Array(memory.buffer, PAGE, PAGE);
  mine()[0] = 0xab;
  mine()[1] = 0xcd;
  mine()[PAGE - 1] = 0xef;
  // The pages around the mapping are untouched wasm memory.
  new Uint8Array(memory.buffer)[PAGE - 1] = 0x11;
  new Uint8Array(memory.buffer)[2 * PAGE] = 0x22;

  const srv = listen();
  const child = spawnFixture('segment-child.js', [srv.path]);
  const conn = new Conn(await srv.accept());
  try {
    conn.send({ cmd: 'map' }, [seg]);
    const reply = (await conn.next()).msg;
    assert.ok(reply.ok);
    assert.ok(reply.sawMarker, 'child sees the parent bytes through its own mapping');

    let v = mine();
    let bad = -1;
    for (let i = 0; i < PAGE && bad < 0; i++) if (v[i] !== ((i * 7 + 1) & 0xff)) bad = i;
    assert.is(bad, -1, 'parent sees the child pattern through memory.buffer');
    assert.is(new Uint8Array(memory.buffer)[PAGE - 1], 0x11);
    assert.is(new Uint8Array(memory.buffer)[2 * PAGE], 0x22);

    memory.grow(2);
    assert.is(memory.buffer.byteLength, 6 * PAGE);
    v = mine();
    assert.is(v[100], (100 * 7 + 1) & 0xff, 'old contents visible after grow');
    v[0] = 0x5a; // parent writes after grow, child must see it
    conn.send({ cmd: 'peek', at: [0] });
    assert.equal((await conn.next()).msg.bytes, [0x5a]);
    conn.send({ cmd: 'write2' });
    assert.ok((await conn.next()).msg.ok);
    bad = -1;
    for (let i = 0; i < PAGE && bad < 0; i++) if (v[i] !== ((i * 13 + 5) & 0xff)) bad = i;
    assert.is(bad, -1, 'child writes after parent grow are visible');
    // The grown pages are ordinary memory.
    new Uint8Array(memory.buffer)[5 * PAGE + 7] = 9;
    assert.is(new Uint8Array(memory.buffer)[5 * PAGE + 7], 9);

    native.segmentUnmap(new Uint8Array(memory.buffer), PAGE, PAGE);
    v = mine();
    assert.ok(v.every((b) => b === 0), 'unmapped range reads zeroes');
    v[0] = 0x77; // private now: the child must not see it
    conn.send({ cmd: 'peek', at: [0, 1] });
    assert.equal((await conn.next()).msg.bytes, [5, (13 + 5) & 0xff]);
    assert.is(new Uint8Array(memory.buffer)[PAGE - 1], 0x11);

    conn.send({ cmd: 'bye' });
    const exit = await withTimeout(child.exited, 3000, 'child exit');
    assert.equal(exit, { code: 0, signal: null });
  } finally {
    conn.close();
    srv.close();
    native.closeFd(seg);
    child.kill();
  }
});

test('bad inputs throw coded errors', () => {
  const memory = new WebAssembly.Memory({ initial: 4, maximum: 8, shared: true });
  const view = new Uint8Array(memory.buffer);

  throwsCode(() => native.segmentCreate(1000), 'ERR_OUT_OF_RANGE', RangeError);
  throwsCode(() => native.segmentCreate(0), 'ERR_OUT_OF_RANGE', RangeError);
  throwsCode(() => native.segmentCreate(PAGE + 1), 'ERR_OUT_OF_RANGE', RangeError);
  throwsCode(() => native.segmentCreate(2 ** 30 + PAGE), 'ERR_OUT_OF_RANGE', RangeError);
  throwsCode(() => native.segmentCreate(NaN), 'ERR_OUT_OF_RANGE', RangeError);
  throwsCode(() => native.segmentCreate('65536'), 'ERR_INVALID_ARG_TYPE', TypeError);
  throwsCode(() => native.segmentCreate(), 'ERR_INVALID_ARG_TYPE', TypeError);

  const seg = native.segmentCreate(2 * PAGE);
  try {
    throwsCode(() => native.segmentMap(view, 100, PAGE, seg), 'ERR_OUT_OF_RANGE', RangeError);
    throwsCode(() => native.segmentMap(view, PAGE, 4096, seg), 'ERR_OUT_OF_RANGE', RangeError);
    throwsCode(() => native.segmentMap(view, 4 * PAGE, PAGE, seg), 'ERR_OUT_OF_RANGE', RangeError);
    throwsCode(() => native.segmentMap(view, 3 * PAGE, 2 * PAGE, seg), 'ERR_OUT_OF_RANGE', RangeError);
    throwsCode(() => native.segmentMap(view, -PAGE, PAGE, seg), 'ERR_OUT_OF_RANGE', RangeError);
    throwsCode(() => native.segmentUnmap(view, 8 * PAGE, PAGE), 'ERR_OUT_OF_RANGE', RangeError);
    // A segment smaller than the mapping would SIGBUS later: refused now.
    const err = throwsCode(() => native.segmentMap(view, 0, 3 * PAGE, seg), 'EINVAL', RangeError);
    assert.is(err.syscall, 'mmap');
    // Only views over a shared memory's buffer, from byte 0.
    throwsCode(() => native.segmentMap(new Uint8Array(4 * PAGE), 0, PAGE, seg), 'ERR_INVALID_ARG_TYPE', TypeError);
    throwsCode(() => native.segmentMap(new Uint16Array(memory.buffer), 0, PAGE, seg), 'ERR_INVALID_ARG_TYPE', TypeError);
    throwsCode(() => native.segmentMap(new Uint8Array(memory.buffer, PAGE), 0, PAGE, seg), 'ERR_INVALID_ARG_VALUE', TypeError);
    throwsCode(() => native.segmentMap(view, 0, PAGE, 'x'), 'ERR_INVALID_ARG_TYPE', TypeError);
    throwsCode(() => native.segmentMap(view, 0, PAGE, -1), 'ERR_OUT_OF_RANGE', RangeError);
  } finally {
    native.closeFd(seg);
  }
  // Descriptor that is closed.
  const closed = native.segmentCreate(PAGE);
  native.closeFd(closed);
  const e1 = throwsCode(() => native.segmentMap(view, 0, PAGE, closed), 'EBADF', Error);
  assert.is(e1.errno, 9);
  assert.is(e1.syscall, 'fstat');
  assert.match(e1.message, /fstat failed: .* \(EBADF\)/);
  const e2 = throwsCode(() => native.closeFd(closed), 'EBADF', Error);
  assert.is(e2.syscall, 'close');
  // A descriptor that is not a segment.
  const dirFd = fs.openSync(process.cwd(), 'r');
  try {
    throwsCode(() => native.segmentMap(view, 0, PAGE, dirFd), 'EINVAL', RangeError);
  } finally {
    native.closeFd(dirFd);
  }
  // The memory still works after all that.
  view[0] = 1;
  assert.is(view[0], 1);
});

test.run();
