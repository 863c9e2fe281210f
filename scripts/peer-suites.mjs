#!/usr/bin/env node
// `npm run test:peers`: popular libraries' own test suites (real clients and servers on loopback),
// each run plain and then under xway's preload. Every test that passes plain must pass with the
// preload, the run must reach its end, and the process must exit by itself afterwards (a handle
// left behind would keep a program alive that exits over TCP). Last line:
// "N passed, N failed, N skipped" (tests; a run that hangs or stops early counts one failure more).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { runProcess } from './lib/child.mjs';
import { parseOptions } from './lib/cli.mjs';
import { tableUnder } from './lib/explained.mjs';
import { LIBRARIES, prepareLibrary } from './lib/library-suites.mjs';
import { baseEnv, modeEnv } from './lib/preload.mjs';

const REPORTER = fileURLToPath(new URL('./lib/mocha-reporter.cjs', import.meta.url));
const HELP = `usage: node scripts/peer-suites.mjs [options]
  --suites LIST   comma-separated, of ${LIBRARIES.map((l) => l.name).join(',')} (default: all)
  --timeout S     per run of a suite; the process group is killed after it (default 600)
  --exit-grace S  how long a suite may take to exit after its last test (default 10)
  --json FILE     write the full report as JSON
  --results FILE  write "PEER-SUITES: N passed, N failed, N skipped" (for .ci/run)`;

const opts = parseOptions({
  suites: { type: 'string', default: LIBRARIES.map((l) => l.name).join(',') },
  timeout: { type: 'string', default: '600' },
  'exit-grace': { type: 'string', default: '10' },
  json: { type: 'string' },
  results: { type: 'string' },
}, HELP);
const chosen = opts.suites.split(',').map((s) => s.trim()).filter(Boolean);
const unknown = chosen.filter((s) => !LIBRARIES.some((l) => l.name === s));
if (unknown.length) { console.error(`unknown suite(s): ${unknown.join(', ')}\n${HELP}`); process.exit(2); }
const graceMs = Number(opts['exit-grace']) * 1000;
const explained = new Map(tableUnder('Library tests that differ with the preload').map((r) => [`${r[0]}: ${r[1]}`, r.at(-1)]));

/** One run of a suite in `mode`: its outcomes per test title, and how the process ended. */
async function runSuite(library, suite, mode) {
  const events = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'xway-peer-')), 'events.jsonl');
  fs.writeFileSync(events, '');
  const run = modeEnv(mode, { ...baseEnv(), XWAY_PEER_EVENTS: events });
  // XWAY_DEBUG's lines say which transport each connection took: a suite whose connections all
  // fell back to TCP would pass without having tested a ring.
  if (mode === 'preload') run.env.XWAY_DEBUG = '1';
  let over = null;
  const started = Date.now();
  const result = await runProcess(process.execPath, [suite.mocha, '--reporter', REPORTER, ...library.mocha], {
    cwd: suite.root, env: run.env, timeoutMs: Number(opts.timeout) * 1000,
    onOutput(chunk, kill) {
      // After the last test the process must exit by itself; give it a grace period, then say so.
      if (!over && chunk.toString().includes('xway-peer-suite: run over')) {
        over = Date.now();
        setTimeout(kill, graceMs).unref();
      }
    },
  });
  run.cleanup();
  const outcomes = new Map();
  let ended = false;
  for (const line of fs.readFileSync(events, 'utf8').split('\n').filter(Boolean)) {
    const event = JSON.parse(line);
    if (event.outcome === 'end') { ended = true; continue; }
    // A test can be reported twice (an error after it passed): a failure is what counts.
    if (outcomes.get(event.title)?.outcome !== 'fail') outcomes.set(event.title, event);
  }
  fs.rmSync(path.dirname(events), { recursive: true, force: true });
  const count = (o) => [...outcomes.values()].filter((e) => e.outcome === o).length;
  return {
    mode, outcomes, ended, code: result.code, signal: result.signal, seconds: (Date.now() - started) / 1000,
    hungAtExit: result.killed, timedOut: result.timedOut,
    passing: count('pass'), failing: count('fail'), pending: count('pending'), output: result.output,
    ring: (result.output.match(/xway: connect \S+ -> ring/g) ?? []).length,
    tcp: (result.output.match(/xway: connect \S+ -> tcp/g) ?? []).length,
  };
}

/** Why a run is not a clean one (reached its end and exited by itself), or null. */
function runProblem(run) {
  if (run.timedOut) return `timed out after ${opts.timeout} s before its last test (${run.outcomes.size} tests reported)`;
  if (run.hungAtExit) return `did not exit within ${opts['exit-grace']} s after its last test (a handle keeps the process alive)`;
  if (!run.ended) return `stopped before its last test (${run.outcomes.size} tests reported, exit ${run.code ?? run.signal}): ${lastLines(run.output)}`;
  if (run.mode === 'preload' && run.ring === 0) return `no connection rode a ring (${run.tcp} went to TCP): the run tested TCP, not xway`;
  return null;
}
const lastLines = (text) => text.trim().split('\n').slice(-3).join(' | ');

const started = Date.now();
const reports = [];
for (const library of LIBRARIES.filter((l) => chosen.includes(l.name))) {
  const suite = prepareLibrary(library, { log: (line) => console.error(line) });
  console.error(`${library.name} ${suite.version}: plain…`);
  const plain = await runSuite(library, suite, 'plain');
  console.error(`${library.name}: ${plain.passing} passing plain (${plain.seconds.toFixed(0)} s); with the preload…`);
  const preload = await runSuite(library, suite, 'preload');
  console.error(`${library.name}: ${preload.passing} passing with the preload (${preload.seconds.toFixed(0)} s)`);
  const differing = [];
  const skipped = [];
  let passed = 0;
  for (const [title, event] of plain.outcomes) {
    const reason = explained.get(`${library.name}: ${title}`);
    if (event.outcome !== 'pass') skipped.push({ title, reason: event.outcome === 'pending' ? 'pending in the suite itself' : 'fails without xway on this machine' });
    else if (reason) skipped.push({ title, reason });
    else if (preload.outcomes.get(title)?.outcome === 'pass') passed++;
    else differing.push({ title, error: preload.outcomes.get(title)?.error ?? null });
  }
  const problems = { plain: runProblem(plain), preload: runProblem(preload) };
  reports.push({ name: library.name, version: suite.version, plain, preload, passed, differing, skipped, problems });
}

// --- the report ---
console.log(`\nLibraries' own test suites, plain and with the preload (${((Date.now() - started) / 60000).toFixed(1)} min):\n`);
const heads = ['passing', 'failing', 'pending', 'seconds', 'ring conns', 'tcp conns'];
console.log(`${'suite'.padEnd(34)}${heads.map((h) => h.padStart(11)).join('')}  clean end`);
for (const r of reports) {
  for (const run of [r.plain, r.preload]) {
    const cells = [run.passing, run.failing, run.pending, run.seconds.toFixed(0), run.mode === 'plain' ? '-' : run.ring, run.mode === 'plain' ? '-' : run.tcp];
    console.log(`${`${r.name} ${r.version} ${run.mode}`.padEnd(34)}${cells.map((c) => String(c).padStart(11)).join('')}  ${runProblem(run) ? 'no' : 'yes'}`);
  }
}
let failed = 0, passed = 0, skippedCount = 0;
for (const r of reports) {
  passed += r.passed;
  skippedCount += r.skipped.length;
  failed += r.differing.length + (r.problems.preload ? 1 : 0);
  if (r.problems.plain) console.log(`\n${r.name} plain: ${r.problems.plain}`);
  if (r.problems.preload) console.log(`\n${r.name} with the preload: ${r.problems.preload}`);
  const failing = r.differing.filter((d) => d.error);
  const notRun = r.differing.filter((d) => !d.error);
  if (failing.length) {
    console.log(`\n${r.name}: pass plain, fail with the preload (${failing.length}):`);
    for (const d of failing) console.log(`  ${d.title}\n    ${d.error.split('\n').slice(0, 3).join('\n    ')}`);
  }
  if (notRun.length) {
    console.log(`\n${r.name}: pass plain, never ran with the preload (${notRun.length}; the suite stopped before them), from:`);
    for (const d of notRun.slice(0, 5)) console.log(`  ${d.title}`);
  }
  const explainedSkips = r.skipped.filter((s) => !/without xway|pending/.test(s.reason));
  for (const s of explainedSkips) console.log(`  skipped: ${r.name}: ${s.title}: ${s.reason}`);
}
if (opts.json) {
  const plainRun = ({ outcomes, output, ...rest }) => ({ ...rest, tests: Object.fromEntries([...outcomes].map(([t, e]) => [t, e.outcome])) });
  fs.writeFileSync(opts.json, JSON.stringify(reports.map((r) => ({ ...r, plain: plainRun(r.plain), preload: plainRun(r.preload) })), null, 2));
}
const line = `${passed} passed, ${failed} failed, ${skippedCount} skipped`;
if (opts.results) fs.writeFileSync(opts.results, `PEER-SUITES: ${line}\n`);
console.log(`\n${line}`);
process.exitCode = failed ? 1 : 0;
