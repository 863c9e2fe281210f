// Declares the uvu tests of the differential semantics suite for a list of modes: one test per
// (mode, scenario), each reporting its scenario's outcome against the one expected. Used by
// ./semantics.test.js (this host's modes) and ../xen/semantics.test.js (inside a Xen dom0).
// Options from the environment:
//   XWAY_SEMANTICS_ONLY=<regexp>    scenarios whose name matches
//   XWAY_SEMANTICS_REPEAT=<n>       run each scenario n times (every run must match)
//   XWAY_SEMANTICS_PRINT=1          print every observed outcome as a JSON line (mode, scenario,
//                                   run, ms, logs, snaps, errors): how the expectations were measured
//   XWAY_SEMANTICS_SERIAL=1         one mode after another (default: all modes at once)
//   XWAY_SEMANTICS_LIMIT_MS=<ms>    the bound of every wait (default 3000; children inherit it)
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Driver, applies, compare } from './harness.js';
import { scenarios } from './scenarios.js';

/**
 * @param test, assert   uvu's
 * @param modes          the modes to run
 * @param budgetMs       optional: scenarios not started this long after the first are reported
 *                       as failures ("not run"), so that a slow machine still ends the file
 * @param leaveOut       optional: scenarios this suite does not run (each says why it is left out)
 */
export function defineSuite({ test, assert, modes, budgetMs = Infinity, leaveOut = () => false }) {
  const only = process.env.XWAY_SEMANTICS_ONLY ? new RegExp(process.env.XWAY_SEMANTICS_ONLY) : null;
  const repeat = Number(process.env.XWAY_SEMANTICS_REPEAT || 1);
  const print = !!process.env.XWAY_SEMANTICS_PRINT;
  const serial = !!process.env.XWAY_SEMANTICS_SERIAL;

  let driver;
  let dir;
  let startedAt = 0;
  const saved = {};
  const plan = modes.map((mode) => ({ mode, scenarios: scenarios.filter((s) => applies(mode, s) && !leaveOut(s) && (!only || only.test(s.name))) }));
  const outcomes = new Map();
  const key = (mode, scenario) => `${mode.name}: ${scenario.name}`;

  /** Runs `scenario` `repeat` times; resolves with the distinct failures (and how often each).
   *  Every run, even after a failed one: a repeated run is there to show whether the outcome varies. */
  async function runAll(mode, scenario) {
    const failures = new Map();
    if (performance.now() - startedAt > budgetMs) {
      failures.set(`not run: the suite's time budget (${Math.round(budgetMs / 1000)} s) was spent`, repeat);
      return failures;
    }
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
    // A registry of our own, for this process, its workers and its children; the transport is
    // chosen by each mode, not by the caller's environment.
    for (const name of ['XWAY_DIR', 'XWAY']) saved[name] = process.env[name];
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xsem-'));
    process.env.XWAY_DIR = dir;
    delete process.env.XWAY;
    driver = new Driver({ env: { ...process.env } });
    startedAt = performance.now();
    // The modes run at the same time, each its scenarios one after another: most of a scenario's
    // time is waiting, and a failing ring scenario waits out its bound, so at once the suite takes
    // about as long as its slowest mode. The tests below then report each outcome in order.
    const start = (mode, list, after) => {
      for (const scenario of list) {
        const run = after.then(() => runAll(mode, scenario));
        outcomes.set(key(mode, scenario), run);
        after = run.catch(() => {});
      }
      return after;
    };
    let chain = Promise.resolve();
    for (const { mode, scenarios: list } of plan) {
      if (serial) chain = start(mode, list, chain);
      else start(mode, list, Promise.resolve());
    }
  });

  test.after(async () => {
    await Promise.allSettled(outcomes.values());
    await driver.close();
    fs.rmSync(dir, { recursive: true, force: true });
    // Other test files may share this process (uvu's runner): give them back their environment.
    for (const [name, value] of Object.entries(saved)) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
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
}
