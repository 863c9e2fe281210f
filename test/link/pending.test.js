// The pending set (src/platform/common/pending.ts): marks found once each, and a drain bounded by
// the slots its owner ever used reads only their level-0 words, leaving marks above in place.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { PendingSet } from '../../dist/platform/common/pending.js';
import { MAX_SLOTS, PENDING_BYTES } from '../../dist/platform/common/link-layout.js';

function pendingSet() {
  const words = new Int32Array(new SharedArrayBuffer(PENDING_BYTES + 64));
  return new PendingSet(words, 64);
}
const drained = (set, bound) => {
  const slots = [];
  set.drain((s) => slots.push(s), bound);
  return slots;
};

test('every marked slot is visited once, and the set is empty after', () => {
  const set = pendingSet();
  for (const s of [0, 1, 31, 32, 1023, 1024, 70000, MAX_SLOTS - 1]) set.mark(s);
  set.mark(31); // twice: still once
  assert.ok(set.any());
  assert.equal(drained(set), [0, 1, 31, 32, 1023, 1024, 70000, MAX_SLOTS - 1]);
  assert.not.ok(set.any());
  assert.equal(drained(set), []);
});

test('a bounded drain reads the level-0 words below its bound; marks above stay for later', () => {
  const set = pendingSet();
  for (const s of [3, 1000, 1500, 90000]) set.mark(s);
  // Bound 10: the first level-0 word (slots 0-1023) only.
  assert.ok(set.any(10));
  assert.equal(drained(set, 10), [3, 1000]);
  assert.not.ok(set.any(10), 'nothing left below the bound');
  assert.ok(set.any(), 'the marks above the bound are still there');
  // The owner's slots grew past 1500: that mark is found now, 90000's still waits.
  assert.equal(drained(set, 1501), [1500]);
  assert.equal(drained(set), [90000]);
  assert.not.ok(set.any());
});

test('bounds out of range are clamped', () => {
  const set = pendingSet();
  set.mark(MAX_SLOTS - 1);
  assert.equal(drained(set, MAX_SLOTS * 4), [MAX_SLOTS - 1]);
  set.mark(0);
  assert.equal(drained(set, 0), [], 'bound 0: no word read');
  assert.equal(drained(set, 1), [0]);
});

test.run();
