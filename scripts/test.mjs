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
  // uvu prints "Total: N" (tests run, skipped ones not included), "Passed: N", "Skipped: N"
  // (with colour codes) at the end; tests registered as skipped print "SKIP <name>: <reason>".
  const plain = output.replace(/\x1b\[[0-9;]*m/g, '');
  const count = (label) => Number(plain.match(new RegExp(`${label}:\\s+(\\d+)`))?.[1] ?? NaN);
  const total = count('Total'), skipped = count('Skipped') || 0;
  let passed = count('Passed');
  let failed = total - passed;
  if (!Number.isFinite(failed) || ((code !== 0 || signal) && failed === 0)) failed = Math.max(1, failed || 0);
  const reasons = plain.split('\n').filter((line) => line.startsWith('SKIP '));
  if (reasons.length) console.log(`skipped:\n${reasons.map((r) => `  ${r.slice(5)}`).join('\n')}`);
  const xen = xenResults();
  if (xen) {
    console.log(`with the Xen tests run in dom0 by test/xen/run.sh: ${xen.passed} passed, ${xen.failed} failed`);
    passed += xen.passed;
    failed += xen.failed;
  }
  console.log(`${Number.isFinite(passed) ? passed : 0} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
  process.exitCode = code === 0 && failed === 0 ? 0 : 1;
});

/** The Xen harness's counts, when .ci/run ran it (XWAY_XEN_RESULTS names its output); a harness
 *  that printed no count counts as one failure. */
function xenResults() {
  const file = process.env.XWAY_XEN_RESULTS;
  if (!file) return null;
  let text = '';
  try { text = fs.readFileSync(file, 'utf8'); } catch { /* no output at all */ }
  const m = /^XEN-TESTS: (\d+) passed, (\d+) failed/m.exec(text);
  return m ? { passed: Number(m[1]), failed: Number(m[2]) } : { passed: 0, failed: 1 };
}
