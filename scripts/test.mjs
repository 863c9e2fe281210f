// `npm test`: runs every test file with uvu, passes its output through, and ends with one line
// "N passed, N failed" from uvu's totals so every run states its count.
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import fs from 'node:fs';
import path from 'node:path';

const require = createRequire(import.meta.url);
const uvu = path.join(path.dirname(require.resolve('uvu')), '..', 'bin.js');
// test/xen/ runs inside a Xen dom0 only (test/xen/run.sh boots one under QEMU; .ci/run runs it), so
// the suite here leaves it out rather than counting tests it cannot run.
const args = [uvu, 'test', '\\.test\\.js$', '--ignore', 'fixtures', '--ignore', '^xen(/|$)', ...process.argv.slice(2)];
const child = spawn(process.execPath, args, { stdio: ['inherit', 'pipe', 'inherit'] });

let output = '';
child.stdout.on('data', (chunk) => {
  output += chunk;
  process.stdout.write(chunk);
});
child.on('close', (code, signal) => {
  // uvu prints "Total: N", "Passed: N", "Skipped: N" (with colour codes) at the end.
  const plain = output.replace(/\x1b\[[0-9;]*m/g, '');
  const count = (label) => Number(plain.match(new RegExp(`${label}:\\s+(\\d+)`))?.[1] ?? NaN);
  const total = count('Total');
  let skipped = count('Skipped') || 0;
  let passed = count('Passed');
  let failed = total - passed - skipped;
  if (!Number.isFinite(failed) || ((code !== 0 || signal) && failed === 0)) failed = Math.max(1, failed || 0);
  for (const extra of extraResults()) {
    console.log(`with ${extra.label}: ${extra.passed} passed, ${extra.failed} failed${extra.skipped ? `, ${extra.skipped} skipped` : ''}`);
    passed += extra.passed;
    failed += extra.failed;
    skipped += extra.skipped;
  }
  console.log(`${Number.isFinite(passed) ? passed : 0} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
  process.exitCode = code === 0 && failed === 0 ? 0 : 1;
});

/** Counts that .ci/run gathered outside uvu, each in a results file named by an environment
 *  variable: the Xen harness (XEN-TESTS), Node's own networking tests under the preload
 *  (NODE-SUITE), libraries' own suites under the preload (PEER-SUITES). A named file without its
 *  count line counts as one failure. */
const EXTRA = [
  { env: 'XWAY_XEN_RESULTS', tag: 'XEN-TESTS', label: 'the Xen tests run in dom0 by test/xen/run.sh' },
  { env: 'XWAY_NODE_SUITE_RESULTS', tag: 'NODE-SUITE', label: "Node's own networking tests under the preload (scripts/node-suite.mjs)" },
  { env: 'XWAY_PEER_SUITES_RESULTS', tag: 'PEER-SUITES', label: "libraries' own test suites under the preload (scripts/peer-suites.mjs)" },
];
function extraResults() {
  return EXTRA.filter((extra) => process.env[extra.env]).map((extra) => {
    let text = '';
    try { text = fs.readFileSync(process.env[extra.env], 'utf8'); } catch { /* no output at all */ }
    const m = new RegExp(`^${extra.tag}: (\\d+) passed, (\\d+) failed(?:, (\\d+) skipped)?`, 'm').exec(text);
    const [passed, failed, skipped] = m ? [m[1], m[2], m[3] ?? 0].map(Number) : [0, 1, 0];
    return { label: extra.label, passed, failed, skipped };
  });
}
