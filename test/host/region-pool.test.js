// The per-thread pool of page slots that channel segments are mapped into.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { RegionPool } from '../../dist/platform/host/region-pool.js';

const PAGE = 65536;

test('slots are page-aligned, never overlap, are reused and merged, and the memory grows', () => {
  const pool = new RegionPool();
  assert.is(pool.memory.buffer.byteLength, PAGE, 'only the reserved page at first');
  const a = pool.allocate(1);
  const b = pool.allocate(3 * PAGE);
  const c = pool.allocate(PAGE + 1);
  assert.equal([a, b, c], [PAGE, 2 * PAGE, 5 * PAGE]);
  assert.is(pool.memory.buffer.byteLength, 7 * PAGE);
  pool.release(b, 3 * PAGE);
  pool.release(a, 1);
  assert.is(pool.freePages, 4);
  assert.is(pool.allocate(4 * PAGE), PAGE, 'the two freed neighbours merged into one slot');
  pool.release(c, PAGE + 1);
  pool.release(PAGE, 4 * PAGE);
  assert.is(pool.freePages, 6);
  assert.is(pool.allocate(6 * PAGE), PAGE);
  assert.is(pool.memory.buffer.byteLength, 7 * PAGE, 'no growth while a slot fits');
});

test.run();
