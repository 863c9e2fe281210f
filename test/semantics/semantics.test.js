// The differential semantics suite (issue 14): every scenario of ./scenarios.js, with its one
// expected outcome (node:net's on this machine), over plain TCP and over every ring platform of
// this host. See ./README.md for how to run one mode or one scenario, and how the expectations
// were measured.
//   XWAY_SEMANTICS_MODES=net,tcp,threads,same,host   modes to run (default: all of them)
//   XWAY_SEMANTICS_ONLY=<regexp>                     scenarios whose name matches
//   XWAY_SEMANTICS_REPEAT=<n>                        run each scenario n times (all must match)
//   XWAY_SEMANTICS_PRINT=1                           print every observed outcome as a JSON line
//   XWAY_SEMANTICS_SERIAL=1                          one mode after another (default: all at once)
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Driver, MODES, applies, compare } from './harness.js';
import { scenarios } from './scenarios.js';

const modes = (process.env.XWAY_SEMANTICS_MODES || Object.keys(MODES).join(',')).split(',').map((m) => {
  if (!MODES[m]) throw new Error(`XWAY_SEMANTICS_MODES: no mode ${m} (${Object.keys(MODES)})`);
  return MODES[m];
});
const only = process.env.XWAY_SEMANTICS_ONLY ? new RegExp(process.env.XWAY_SEMANTICS_ONLY) : null;
const repeat = Number(process.env.XWAY_SEMANTICS_REPEAT || 1);
const print = !!process.env.XWAY_SEMANTICS_PRINT;

let driver;
let dir;
const saved = {};
test.before(() => {
  // A registry of our own, for this process, its workers and its children; the transport is
  // chosen by each mode, not by the caller's environment.
  for (const name of ['XWAY_DIR', 'XWAY']) saved[name] = process.env[name];
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xsem-'));
  process.env.XWAY_DIR = dir;
  delete process.env.XWAY;
  driver = new Driver({ env: { ...process.env } });
});

test.after(async () => {
  await driver.close();
  fs.rmSync(dir, { recursive: true, force: true });
  for (const [name, value] of Object.entries(saved)) {
    if (value === undefined) delete process.env[name];
    else process.env[name] = value;
  }
});

// The modes run at the same time, each its scenarios one after another (XWAY_SEMANTICS_SERIAL=1:
// one mode after another): most of a scenario's time is waiting, and a failing ring scenario
// waits out its bound (3 s), so in parallel the suite takes about as long as its slowest mode.
// The tests below then report each outcome in order.
const serial = !!process.env.XWAY_SEMANTICS_SERIAL;
const plan = modes.map((mode) => ({ mode, scenarios: scenarios.filter((s) => applies(mode, s) && (!only || only.test(s.name))) }));
const outcomes = new Map();
const key = (mode, scenario) => `${mode.name}: ${scenario.name}`;

/** Runs `scenario` `repeat` times; resolves with the distinct failures (and how often each). */
async function runAll(mode, scenario) {
  // Every run, even after a failed one: a repeated run is there to show whether the outcome varies.
  const failures = new Map();
  for (let i = 0; i < repeat; i++) {
    const t0 = performance.now();
    const obs = await driver.run(mode, scenario);
    const ms = Math.round(performance.now() - t0);
    if (print) console.log(JSON.stringify({ mode: mode.name, scenario: scenario.name, run: i, ms, logs: obs.logs, snaps: obs.snaps, errors: obs.errors }));
    const problems = compare(scenario, obs, mode).join('\n    ');
    if (problems) failures.set(problems, (failures.get(problems) ?? 0) + 1);
  }
  return failures;
}

test.before(() => {
  const start = (mode, list, after = Promise.resolve()) => {
    for (const scenario of list) {
      const previous = after;
      after = previous.then(() => runAll(mode, scenario));
      outcomes.set(key(mode, scenario), after);
      after = after.catch(() => {});
    }
    return after;
  };
  let chain = Promise.resolve();
  for (const { mode, scenarios: list } of plan) {
    if (serial) chain = start(mode, list, chain);
    else start(mode, list);
  }
});

for (const { mode, scenarios: list } of plan) {
  for (const scenario of list) {
    test(key(mode, scenario), async () => {
      const failures = await outcomes.get(key(mode, scenario));
      if (failures.size) {
        assert.unreachable([...failures].map(([p, n]) => `${repeat > 1 ? `${n} of ${repeat} runs:` : ''}\n    ${p}`).join('\n'));
      }
    });
  }
}

test.run();
