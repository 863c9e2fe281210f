// The differential semantics suite between two network namespaces: fixtures/semantics-netns.mjs
// runs it in container B against peers in container A's network namespace, over plain TCP across
// the veth (the reference, measured in the same run) and over the ring. One test here per mode,
// failing with the scenarios that failed in it.
import * as assert from 'uvu/assert';
import path from 'node:path';
import { createRequire } from 'node:module';
import { labSuite, unavailable } from './common.js';
import { createLab, ROOT } from './netns.js';

const { s, test } = labSuite('containers: the semantics suite across network namespaces');
const uvu = path.join(path.dirname(createRequire(import.meta.url).resolve('uvu')), '..', 'bin.js');

let lab;
s.before(() => {
  if (unavailable) return;
  lab = createLab({ containers: { a: {}, b: {} } });
});
s.after(async () => { await lab?.close(); });

/** Runs the inner suite for `mode` in B; returns its counts and the names of failed scenarios. */
async function suite(mode) {
  const program = lab.start('b', uvu, {
    args: ['test/containers/fixtures', 'semantics-netns\\.mjs$'],
    env: { XCT_SERVER_ADDRESS: lab.containers.a.address, XCT_PEER_NETNS: '/run/xct-netns/a', XWAY_NETNS_SEMANTICS_MODES: mode, NO_COLOR: '1' },
    seeNamespaces: true,
  });
  let timer;
  const status = await Promise.race([program.exited, new Promise((resolve) => { timer = setTimeout(() => resolve(null), 120_000); })]);
  clearTimeout(timer);
  if (!status) await program.kill();
  const out = program.lines.join('\n').replace(/\x1b\[[0-9;]*m/g, '');
  const count = (label) => Number(out.match(new RegExp(`${label}:\\s+(\\d+)`))?.[1] ?? NaN);
  const failed = [...out.matchAll(/FAIL .*?"(.+?)"/g)].map((m) => m[1]);
  return { status, total: count('Total'), passed: count('Passed'), failed, out, stderr: program.stderr };
}

for (const [mode, what] of [['net', 'node:net across the veth (the reference: every expectation holds over TCP between namespaces)'], ['netns', 'the ring between the namespaces']]) {
  test(`every scenario of the semantics suite, ${what}`, async () => {
    const r = await suite(mode);
    assert.ok(r.total > 0, `the suite ran scenarios in B (exit ${JSON.stringify(r.status)}):\n${r.out.slice(-3000)}\n${r.stderr.slice(-2000)}`);
    assert.equal(r.failed, [], `${r.total - r.passed} of ${r.total} scenarios failed in mode ${mode}`);
    assert.is(r.passed, r.total);
  });
}

s.run();
