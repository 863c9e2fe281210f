// Helpers for tests with a real second process.
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { tempSocket, withTimeout } from '../native/util.js';

export { tempSocket };

const PEER = new URL('./fixtures/peer.js', import.meta.url).pathname;

/** Messages with an `event` field, queued until a test asks for the next one of an event. */
export function eventQueue(what = 'peer') {
  const waiting = [];
  const seen = [];
  return {
    push(message) {
      const i = waiting.findIndex((w) => w.event === message.event);
      if (i >= 0) waiting.splice(i, 1)[0].resolve(message);
      else seen.push(message);
    },
    next(event, ms = 60_000) {
      const i = seen.findIndex((m) => m.event === event);
      if (i >= 0) return Promise.resolve(seen.splice(i, 1)[0]);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`${what} did not report '${event}' within ${ms} ms`)), ms);
        waiting.push({ event, resolve: (m) => { clearTimeout(timer); resolve(m); } });
      });
    },
  };
}

/** Starts fixtures/peer.js; `next(event)` resolves with the next JSON line of that event. */
export function startPeer(args) {
  const child = spawn(process.execPath, [PEER, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  const events = eventQueue();
  createInterface({ input: child.stdout }).on('line', (line) => events.push(JSON.parse(line)));
  child.exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  child.next = events.next;
  return child;
}

const XWAY_PEER = new URL('../socket/fixtures/xway-peer.js', import.meta.url).pathname;

/** Starts test/socket/fixtures/xway-peer.js in `mode` with the current XWAY_DIR; `listening`
 *  resolves with its 'listening' line ({port, pid}). */
export function startXwayPeer(mode, ...args) {
  const child = spawn(process.execPath, [XWAY_PEER, mode, ...args.map(String)], { stdio: ['ignore', 'pipe', 'inherit'], env: process.env });
  const events = eventQueue('xway peer');
  createInterface({ input: child.stdout }).on('line', (line) => events.push(JSON.parse(line)));
  return { child, listening: events.next('listening') };
}

/** Descriptors open in this process, with what they point to. */
export function openFds() {
  return fs.readdirSync('/proc/self/fd').map((fd) => {
    let target = '';
    try { target = fs.readlinkSync(`/proc/self/fd/${fd}`); } catch { /* the readdir's own fd */ }
    return `${fd} -> ${target}`;
  }).filter((s) => !s.endsWith('-> ')).sort();
}

/** Descriptors open now that were not open at `before` (fd number and target both count, so a
 *  reused number pointing elsewhere is new). Ones that closed meanwhile — a worker thread of an
 *  earlier test finishing its exit, say — are not leaks and are ignored. */
export function newFds(before) {
  return openFds().filter((fd) => !before.includes(fd));
}

/** Channel segments still mapped into this process. */
export function mappedSegments() {
  return fs.readFileSync('/proc/self/maps', 'utf8').split('\n').filter((l) => l.includes('xway-channel'));
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Rejects if `promise` has not settled within `ms`: a test fails instead of hanging. */
export const within = (ms, promise, what) => withTimeout(promise, ms, what);

/** Polls `condition` every few ms; throws after `ms`. */
export async function waitFor(condition, ms, what) {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`${what}: not true within ${ms} ms`);
    await sleep(2);
  }
}

/** Points XWAY_DIR at a fresh temporary directory while `suite`'s tests run, and removes it after.
 *  Set in before(), not at import: uvu imports every test file before it runs any. */
export function useTempRegistry(suite, prefix) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  let saved;
  suite.before(() => {
    saved = process.env.XWAY_DIR;
    process.env.XWAY_DIR = dir;
  });
  suite.after(() => {
    if (saved === undefined) delete process.env.XWAY_DIR;
    else process.env.XWAY_DIR = saved;
    // A peer the suite stops in its own after hook (which runs after this one) may still be
    // writing its stat table here, for as long as it lives: what cannot be removed now is removed
    // when the test process exits, rather than failing the suite.
    try {
      fs.rmSync(dir, { recursive: true, force: true, maxRetries: 3, retryDelay: 20 });
    } catch {
      process.once('exit', () => {
        try { fs.rmSync(dir, { recursive: true, force: true }); } catch { /* a leftover in /tmp, not a failure */ }
      });
    }
  });
  return dir;
}
