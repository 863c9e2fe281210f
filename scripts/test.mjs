// `npm test`: runs every test file with uvu, passes its output through, and ends with one line
// "N passed, N failed[, N skipped]" from uvu's totals so every run states its count.
//
// Suites that run outside uvu (the Xen harness in dom0, the packaging test, ...) are counted into
// that line too: .ci/run runs each one first with its output in a file, and lists the files in
// XWAY_EXTRA_RESULTS, separated like PATH (":"). In each file the last line of the form
//   NAME: N passed, N failed[, N skipped] (anything may follow)
// (NAME: letters, digits, "-" or "_") is that suite's count; a file without one (a suite that died
// before it could count) counts as one failure. The Xen harness's file is XWAY_XEN_RESULTS, read
// more strictly (xenResults below: only a clean run counts).
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import fs from 'node:fs';
import path from 'node:path';

const require = createRequire(import.meta.url);
const uvu = path.join(path.dirname(require.resolve('uvu')), '..', 'bin.js');
// test/xen/ runs inside a Xen dom0 only (test/xen/run.sh boots one under QEMU; .ci/run runs it), so
// the suite here leaves it out rather than counting tests it cannot run.
// Two lanes at once, as the machine has two cores and one uvu process leaves one mostly idle: the
// container, browser, semantics and command-line tests (their own namespaces, browser and
// processes; mostly waiting on the processes they start) beside everything else, about half the
// time each. The first lane prints as it goes, the second when it is done. Arguments (a pattern,
// uvu options) make it one lane, as uvu alone would run.
const base = ['--ignore', 'fixtures', '--ignore', '^xen(/|$)'];
const extra = process.argv.slice(2);
const aside = '^(containers|browser|semantics|cli)/';
const lanes = extra.length
  ? [[uvu, 'test', '\\.test\\.js$', ...base, ...extra]]
  : [[uvu, 'test', '\\.test\\.js$', ...base, '--ignore', aside], [uvu, 'test', `${aside}.*\\.test\\.js$`, ...base]];

function runLane(args, live) {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, args, { stdio: ['inherit', 'pipe', live ? 'inherit' : 'pipe'] });
    let output = '';
    let errors = '';
    child.stdout.on('data', (chunk) => {
      output += chunk;
      if (live) process.stdout.write(chunk);
    });
    child.stderr?.on('data', (chunk) => { errors += chunk; });
    child.on('close', (code, signal) => resolve({ output, errors, code, signal }));
  });
}

/** uvu's totals ("Total: N" counts the tests run, skipped ones apart; "Passed: N", "Skipped: N",
 *  with colour codes); a lane that failed without a failed test counts one failure. */
function laneCounts({ output, code, signal }) {
  const plain = output.replace(/\x1b\[[0-9;]*m/g, '');
  const count = (label) => Number(plain.match(new RegExp(`${label}:\\s+(\\d+)`))?.[1] ?? NaN);
  const total = count('Total'), skipped = count('Skipped') || 0;
  const passed = count('Passed');
  let failed = total - passed;
  if (!Number.isFinite(failed) || ((code !== 0 || signal) && failed === 0)) failed = Math.max(1, failed || 0);
  const reasons = plain.split('\n').filter((line) => line.startsWith('SKIP '));
  return { passed: Number.isFinite(passed) ? passed : 0, failed, skipped, reasons, ok: code === 0 };
}

const results = await Promise.all(lanes.map((args, i) => runLane(args, i === 0)));
for (const r of results.slice(1)) {
  process.stdout.write(r.output);
  process.stderr.write(r.errors);
}
{
  const counts = results.map(laneCounts);
  let passed = counts.reduce((n, c) => n + c.passed, 0);
  let failed = counts.reduce((n, c) => n + c.failed, 0);
  const skipped = counts.reduce((n, c) => n + c.skipped, 0);
  const code = counts.every((c) => c.ok) ? 0 : 1;
  const reasons = counts.flatMap((c) => c.reasons);
  if (reasons.length) console.log(`skipped:\n${reasons.map((r) => `  ${r.slice(5)}`).join('\n')}`);
  let skippedAll = skipped;
  const xen = xenResults();
  if (xen) {
    console.log(`with the Xen tests run under Xen by test/xen/run.sh: ${xen.passed} passed, ${xen.failed} failed, ${xen.skipped} skipped`);
    passed += xen.passed;
    failed += xen.failed;
    skippedAll += xen.skipped;
  }
  for (const extra of extraResults()) {
    console.log(`with ${extra.name} (${extra.file}): ${extra.passed} passed, ${extra.failed} failed, ${extra.skipped} skipped`);
    passed += extra.passed;
    failed += extra.failed;
    skippedAll += extra.skipped;
  }
  console.log(`${passed} passed, ${failed} failed${skippedAll ? `, ${skippedAll} skipped` : ''}`);
  process.exitCode = code === 0 && failed === 0 ? 0 : 1;
}

/** The counts of the suites listed in XWAY_EXTRA_RESULTS (the packaging test, Node's own suite,
 *  popular libraries' suites): the last "NAME: N passed, N failed[, N skipped]" line of each; a
 *  file without one is one failure. */
function extraResults() {
  const files = (process.env.XWAY_EXTRA_RESULTS ?? '').split(path.delimiter).filter((file, i, all) => file && all.indexOf(file) === i);
  return files.map((file) => {
    let text = '';
    try { text = fs.readFileSync(file, 'utf8'); } catch { /* no output at all */ }
    const counts = [...text.matchAll(/^([A-Za-z][\w-]*): (\d+) passed, (\d+) failed(?:, (\d+) skipped)?/gm)].pop();
    if (!counts) return { file, name: 'a suite that printed no count', passed: 0, failed: 1, skipped: 0 };
    return { file, name: counts[1], passed: Number(counts[2]), failed: Number(counts[3]), skipped: Number(counts[4] ?? 0) };
  });
}

/** The Xen harness's counts, when .ci/run ran it (XWAY_XEN_RESULTS names its output). Only a
 *  clean run counts: test/xen/run.sh prints "XEN-TESTS: N passed, N failed, N skipped" only after
 *  the tests finished and the emulated machine powered off by itself, and .ci/run appends the
 *  harness's exit status ("XEN-HARNESS-EXIT N": 0 all passed, 1 some failed). No count, an
 *  "XEN-TESTS-UNCLEAN" line, a missing or other exit status (a hang, a timeout, a crash after the
 *  totals), or counts that disagree with the status: one failure at least, nothing passed. Where
 *  .ci/run could not install QEMU and Xen ("XEN-TESTS-SKIPPED: why"): one skipped test. */
function xenResults() {
  const file = process.env.XWAY_XEN_RESULTS;
  if (!file) return null;
  let text = '';
  try { text = fs.readFileSync(file, 'utf8'); } catch { /* no output at all */ }
  const skippedWhy = /^XEN-TESTS-SKIPPED: (.*)$/m.exec(text)?.[1];
  if (skippedWhy) {
    console.log(`the Xen tests were not run (${skippedWhy}): counted as one skipped`);
    return { passed: 0, failed: 0, skipped: 1 };
  }
  const m = /^XEN-TESTS: (\d+) passed, (\d+) failed(?:, (\d+) skipped)?/m.exec(text);
  const exit = /^XEN-HARNESS-EXIT (\d+)\s*$/m.exec(text)?.[1];
  const unclean = /^XEN-TESTS-UNCLEAN/m.test(text);
  if (!m || unclean || (exit !== '0' && exit !== '1')) {
    console.log(`the Xen harness did not finish cleanly (${unclean ? 'it said so' : !m ? 'no count' : `exit status ${exit ?? 'missing'}`}): counted as failed`);
    return { passed: 0, failed: Math.max(1, m ? Number(m[2]) : 1), skipped: 0 };
  }
  const counts = { passed: Number(m[1]), failed: Number(m[2]), skipped: Number(m[3] ?? 0) };
  if ((exit === '1') !== (counts.failed > 0)) {
    console.log(`the Xen harness's exit status ${exit} disagrees with its count: counted as failed`);
    return { passed: 0, failed: Math.max(1, counts.failed), skipped: 0 };
  }
  return counts;
}
