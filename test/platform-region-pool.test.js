// The per-thread pool of page slots that link chunks and Xen grants are mapped into.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { RegionPool } from '../dist/platform/common/region-pool.js';

const PAGE = 65536;

test('slots are page-aligned, never overlap, are reused and merged, and the memory grows', () => {
  const pool = new RegionPool();
  assert.is(pool.memory.buffer.byteLength, PAGE, 'only the reserved page at first');
  const at = (p) => { assert.is(p.memory, pool.memory); return p.offset; };
  const a = pool.allocate(1);
  const b = pool.allocate(3 * PAGE);
  const c = pool.allocate(PAGE + 1);
  assert.equal([at(a), at(b), at(c)], [PAGE, 2 * PAGE, 5 * PAGE]);
  assert.is(pool.memory.buffer.byteLength, 7 * PAGE);
  pool.release(b, 3 * PAGE);
  pool.release(a, 1);
  assert.is(pool.freePages, 4);
  assert.is(at(pool.allocate(4 * PAGE)), PAGE, 'the two freed neighbours merged into one slot');
  pool.release(c, PAGE + 1);
  pool.release({ memory: pool.memory, offset: PAGE }, 4 * PAGE);
  assert.is(pool.freePages, 6);
  assert.is(at(pool.allocate(6 * PAGE)), PAGE);
  assert.is(pool.memory.buffer.byteLength, 7 * PAGE, 'no growth while a slot fits');
});

test('past 4 GiB a second memory opens, within the budget; beyond it allocation fails with a reason', () => {
  const pool = new RegionPool(8 * 2 ** 30);
  const big = pool.allocate(3.5 * 2 ** 30);
  const next = pool.allocate(1 * 2 ** 30);
  assert.is.not(next.memory, big.memory, 'a second memory');
  assert.is(next.offset, PAGE, 'from its first page on');
  let error;
  try { pool.allocate(3.9 * 2 ** 30); pool.allocate(3.9 * 2 ** 30); } catch (err) { error = err; }
  assert.is(error?.code, 'ERR_XWAY_LINK', String(error));
  assert.match(error.message, /budget/);
});

test.run();
