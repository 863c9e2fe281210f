#!/usr/bin/env node
// `npm run test:node-suite`: Node's own test/parallel networking tests (test-net-*, test-http-*,
// test-https-*, test-tls-*, test-http2-*), each run plain and then under xway's preload. A file
// that passes plain must pass with the preload; one that fails plain says nothing about xway and
// is skipped with that reason; one listed in docs/register.md's table of explained differences is
// skipped with its reason. Last line: "N passed, N failed, N skipped"; exit 1 if any failed.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runPool, runProcess } from './lib/child.mjs';
import { parseOptions } from './lib/cli.mjs';
import { tableUnder } from './lib/explained.mjs';
import { MODULES, flagsOf, moduleOf, nodeTests } from './lib/node-tests.mjs';
import { baseEnv, modeEnv } from './lib/preload.mjs';
import { excerpt, progress } from './lib/report.mjs';

const HELP = `usage: node scripts/node-suite.mjs [options]
  --modules LIST   comma-separated, of ${MODULES.join(',')} (default: all)
  --filter REGEX   only files whose name matches
  --jobs N         files run at once (default 2)
  --timeout S      per run, the whole process group is killed after it (default 60); a preload
                   run gets at most 10 s + 3 x its plain run's time, so a hang costs seconds
  --retries N      a preload failure is run again up to N times; a pass then is reported as flaky (default 1)
  --json FILE      write the full report as JSON
  --results FILE   write "NODE-SUITE: N passed, N failed, N skipped" (for .ci/run)
  --keep           keep each run's temporary directory and output (printed in the report)`;

const opts = parseOptions({
  modules: { type: 'string', default: MODULES.join(',') },
  filter: { type: 'string' },
  jobs: { type: 'string', default: '2' },
  timeout: { type: 'string', default: '60' },
  retries: { type: 'string', default: '1' },
  json: { type: 'string' },
  results: { type: 'string' },
  keep: { type: 'boolean', default: false },
}, HELP);
const modules = opts.modules.split(',').map((m) => m.trim()).filter(Boolean);
const unknown = modules.filter((m) => !MODULES.includes(m));
if (unknown.length) { console.error(`unknown module(s): ${unknown.join(', ')}\n${HELP}`); process.exit(2); }
const filter = opts.filter ? new RegExp(opts.filter) : null;
const jobs = Math.max(1, Number(opts.jobs) || 2);
const timeoutMs = Number(opts.timeout) * 1000;
const retries = Math.max(0, Number(opts.retries) || 0);

const PLAIN_FAILS = 'fails without xway on this machine';
const started = Date.now();
const tests = nodeTests({ log: (line) => console.error(line) });
const parallel = path.join(tests.root, 'test', 'parallel');
const explained = new Map(tableUnder("Node's tests that differ with the preload").map((row) => [row[0], row.at(-1)]));
const files = fs.readdirSync(parallel)
  .filter((f) => modules.includes(moduleOf(f)) && (!filter || filter.test(f)))
  .sort();
console.error(`Node ${process.version}, tests of Debian's nodejs ${tests.version} (${tests.root}); ${files.length} files, ${jobs} at a time`);

let serial = 0;
/** One run of `file` in `mode`, with the environment tools/test.py gives a test/parallel file. */
async function runFile(file, mode, slot, limitMs = timeoutMs) {
  const testDir = fs.mkdtempSync(path.join(os.tmpdir(), 'xns-'));
  const env = {
    ...baseEnv(),
    NODE_TEST_DIR: testDir, // test/common/tmpdir puts its .tmp.<id> here: runs never share one
    TEST_SERIAL_ID: String(++serial),
    TEST_THREAD_ID: String(slot),
    TEST_PARALLEL: '1',
    GITHUB_STEP_SUMMARY: '',
  };
  const run = modeEnv(mode, env);
  const source = fs.readFileSync(path.join(parallel, file), 'utf8');
  const args = [...flagsOf(source), path.join('test', 'parallel', file)];
  const result = await runProcess(process.execPath, args, { cwd: tests.root, env: run.env, timeoutMs: limitMs });
  Object.assign(result, { ok: result.code === 0 && !result.timedOut, limitMs });
  if (opts.keep) {
    fs.writeFileSync(path.join(testDir, 'output.txt'), result.output);
    result.kept = testDir;
  } else {
    fs.rmSync(testDir, { recursive: true, force: true });
    run.cleanup();
  }
  return result;
}

let done = 0;
const results = await runPool(files, jobs, async (file, slot) => {
  const entry = { file, module: moduleOf(file) };
  entry.plain = await runFile(file, 'plain', slot);
  if (entry.plain.ok) {
    // A file that has not exited long after its plain run would have is hanging (the preload
    // keeping the process alive is a failure of its own): say so without waiting the full limit.
    const limit = Math.min(timeoutMs, 10_000 + 3 * entry.plain.ms);
    entry.preload = await runFile(file, 'preload', slot, limit);
    for (let i = 0; i < retries && !entry.preload.ok; i++) {
      entry.failedFirst = (entry.failedFirst ?? []).concat(summary(entry.preload));
      entry.preload = await runFile(file, 'preload', slot, limit);
    }
  }
  classify(entry);
  progress(++done, files.length, file, entry.status);
  return entry;
});

function summary(run) {
  const how = run.timedOut ? `timed out after ${(run.limitMs / 1000).toFixed(1)} s` : run.signal ? `killed by ${run.signal}` : `exit code ${run.code}`;
  return { how, excerpt: excerpt(run.output.replaceAll(`${tests.root}/`, '')) };
}

function classify(entry) {
  const reason = explained.get(entry.file);
  if (!entry.plain.ok) Object.assign(entry, { status: 'skipped', reason: PLAIN_FAILS, failure: summary(entry.plain) });
  else if (reason) Object.assign(entry, { status: 'skipped', reason, nowPasses: entry.preload.ok });
  else if (entry.preload.ok) Object.assign(entry, { status: 'passed', flaky: Boolean(entry.failedFirst) });
  else Object.assign(entry, { status: 'failed', failure: summary(entry.preload) });
}

// --- the report ---
const count = (list, pred) => list.filter(pred).length;
const rows = [...modules, 'total'].map((m) => {
  const mine = results.filter((r) => m === 'total' || r.module === m);
  return {
    module: m, files: mine.length,
    passPlain: count(mine, (r) => r.plain.ok), passPreload: count(mine, (r) => r.preload?.ok),
    passed: count(mine, (r) => r.status === 'passed'), failed: count(mine, (r) => r.status === 'failed'),
    skipped: count(mine, (r) => r.status === 'skipped'),
  };
});
const totals = rows.at(-1);
const minutes = ((Date.now() - started) / 60000).toFixed(1);

console.log(`\nNode's networking tests, plain and with the preload (Node ${process.version}, tests of ${tests.version}, ${minutes} min):\n`);
const cols = ['module', 'files', 'passPlain', 'passPreload', 'passed', 'failed', 'skipped'];
const heads = ['module', 'files', 'pass plain', 'pass preload', 'passed', 'failed', 'skipped'];
console.log(heads.map((h, i) => (i ? h.padStart(13) : h.padEnd(7))).join(''));
for (const row of rows) console.log(cols.map((c, i) => (i ? String(row[c]).padStart(13) : row[c].padEnd(7))).join(''));

const failed = results.filter((r) => r.status === 'failed');
if (failed.length) {
  console.log(`\nPass plain, fail with the preload (${failed.length}):`);
  for (const r of failed) {
    console.log(`\n  ${r.file}: ${r.failure.how}${r.preload.kept ? ` (kept: ${r.preload.kept})` : ''}`);
    for (const line of r.failure.excerpt) console.log(`    ${line}`);
  }
}
const flaky = results.filter((r) => r.flaky);
if (flaky.length) console.log(`\nFailed with the preload, then passed on a retry (counted as passed): ${flaky.map((r) => r.file).join(', ')}`);
const skipped = results.filter((r) => r.status === 'skipped');
if (skipped.length) {
  console.log(`\nSkipped (${skipped.length}):`);
  for (const r of skipped.filter((s) => s.reason !== PLAIN_FAILS)) {
    console.log(`  ${r.file}: ${r.reason}${r.nowPasses ? ' [passes with the preload now: its entry in docs/register.md can go]' : ''}`);
  }
  const plainFails = skipped.filter((s) => s.reason === PLAIN_FAILS);
  if (plainFails.length) console.log(`  ${PLAIN_FAILS} (${plainFails.length}): ${plainFails.map((r) => `${r.file} (${r.failure.how})`).join(', ')}`);
}

if (opts.json) {
  const strip = (run) => run && (({ output, ...rest }) => rest)(run);
  const report = {
    node: process.version, tests: tests.version, root: tests.root, jobs, timeoutSeconds: Number(opts.timeout),
    retries, minutes: Number(minutes), modules: rows,
    files: results.map((r) => ({ ...r, plain: strip(r.plain), preload: strip(r.preload) })),
  };
  fs.writeFileSync(opts.json, JSON.stringify(report, null, 2));
}
const line = `${totals.passed} passed, ${totals.failed} failed, ${totals.skipped} skipped`;
if (opts.results) fs.writeFileSync(opts.results, `NODE-SUITE: ${line}\n`);
console.log(`\n${line}`);
process.exitCode = totals.failed ? 1 : 0;
