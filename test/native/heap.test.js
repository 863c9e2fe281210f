// Receive memory that stays mapped (native/src/heap.c, socket/receive-pool.ts): once a process
// receives on a ring, the slabs its GC frees are reused warm instead of page-faulted in again —
// unless the user opted out (XWAY_KEEP_RECEIVE_MEMORY=0) or set glibc's thresholds themselves.
// Real child processes, page faults counted by the kernel.
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../..');

function run(mode, env = {}) {
  const r = spawnSync(process.execPath, ['--expose-gc', path.join(here, 'fixtures', 'heap-keep.mjs'), mode], {
    encoding: 'utf8', timeout: 30_000, env: { ...process.env, XWAY_DIR: undefined, ...env },
  });
  assert.is(r.status, 0, r.stderr);
  return JSON.parse(r.stdout.trim().split('\n').pop());
}

// 40 slabs of 512 KiB are 5,120 pages a round; over four rounds glibc's defaults fault about a
// round's worth in again (5,256 here), kept memory a few hundred (136–391 alone, up to 1,664 in a
// loaded CI run): the two bounds sit a factor of two apart, each with room on its side.
const ROUND = 40 * 128;

// The rest of the machine can only add faults (other processes' memory pressure, V8's own heap
// growing), never take them away, so the least of a few runs is the measure of kept memory; a
// process that does not keep its memory faults a round's worth in every run.
function leastFaults(mode, bound) {
  let least = run(mode);
  for (let i = 1; i < 3 && least.faults >= bound; i++) {
    const next = run(mode);
    if (next.faults < least.faults) least = next;
  }
  return least;
}

test('without it, freed slabs are page-faulted in again', () => {
  const { faults } = run('none');
  assert.ok(faults > ROUND / 2, `${faults} faults`);
});

test("the addon's keepHeapMemory keeps them mapped", () => {
  const { kept, faults } = leastFaults('addon', ROUND / 4);
  assert.is(kept, true);
  assert.ok(faults < ROUND / 4, `${faults} faults at least, in 3 runs`);
});

test('a ring connection that reads asks for it by itself', () => {
  const { faults } = leastFaults('ring', ROUND / 4);
  assert.ok(faults < ROUND / 4, `${faults} faults at least, in 3 runs`);
});

test('XWAY_KEEP_RECEIVE_MEMORY=0, or glibc thresholds already set, leave malloc alone', () => {
  assert.ok(run('ring', { XWAY_KEEP_RECEIVE_MEMORY: '0' }).faults > ROUND / 2);
  const code = `import(${JSON.stringify(path.join(root, 'dist/platform/host/native.js'))}).then((m) => console.log(String(m.keepHeapMemory())))`;
  for (const env of [{ XWAY_KEEP_RECEIVE_MEMORY: '0' }, { MALLOC_TRIM_THRESHOLD_: '131072' }, { MALLOC_MMAP_THRESHOLD_: '131072' }]) {
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', code], { encoding: 'utf8', env: { ...process.env, ...env } });
    assert.is(r.stdout.trim(), 'false', JSON.stringify(env));
  }
});

test.run();
