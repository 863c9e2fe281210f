// `xway bench --netns`: the bench's two processes in two network namespaces joined by a veth pair.
// TCP across the veth is measured today; the ring across the namespaces once the registry finds
// endpoints in other namespaces. Either way the namespaces are gone when the command ends.
import * as assert from 'uvu/assert';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { labSuite } from './common.js';
import { ROOT } from './netns.js';

const { s, test } = labSuite('containers: xway bench --netns');

function bench(args) {
  return new Promise((resolve) => {
    const child = execFile(process.execPath, [path.join(ROOT, 'bin/xway.js'), 'bench', '--netns', '--quiet', '--json', ...args], { timeout: 60_000 }, (err, stdout, stderr) => {
      let out = null;
      try { out = JSON.parse(stdout); } catch { /* reported below */ }
      resolve({ code: err ? err.code : 0, out, stdout, stderr, pid: child.pid });
    });
  });
}

const left = (pid) => { try { return fs.readdirSync('/run/netns').filter((n) => n.startsWith(`xwb${pid}`)); } catch { return []; } };
const quick = ['--test', 'rr,stream', '--size', '64k', '--duration', '0.3', '--warmup', '0.1', '--reps', '1'];

test('measures TCP across the veth pair between two namespaces, and removes them', async () => {
  const r = await bench(['--transport', 'tcp', ...quick]);
  assert.is(r.code, 0, `the bench ran: ${r.stderr}`);
  assert.ok(r.out?.options.netns, 'the JSON says --netns');
  for (const test of ['rr', 'stream']) {
    const row = r.out.results.find((x) => x.test === test && x.transport === 'tcp');
    assert.ok(row && row.value.n === 1 && row.value.median > 0, `a TCP ${test} figure: ${JSON.stringify(row)}`);
    assert.equal(row.carriedBy, ['tcp']);
  }
  assert.equal(left(r.pid), [], 'no namespace of the run is left');
});

test('measures the ring across the two namespaces', async () => {
  const r = await bench(['--transport', 'ring,tcp', ...quick]);
  assert.equal(r.out?.failures ?? [], [], 'no data point failed');
  for (const test of ['rr', 'stream']) {
    const row = r.out.results.find((x) => x.test === test && x.transport === 'ring');
    assert.ok(row && row.value.n === 1, `a ring ${test} figure: ${JSON.stringify(row)}`);
    assert.equal(row.carriedBy, ['ring']);
  }
  assert.is(r.code, 0, r.stderr);
  assert.equal(left(r.pid), [], 'no namespace of the run is left');
});

s.run();
