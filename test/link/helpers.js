// Helpers for the link tests: real processes driven over stdin/stdout (fixtures/peer.mjs), and
// what the kernel says about a process (/proc/<pid>/fd, maps, stat).
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import fs from 'node:fs';
import { eventQueue } from '../host/helpers.js';

export { sleep, within, waitFor, useTempRegistry } from '../host/helpers.js';

const PEER = new URL('./fixtures/peer.mjs', import.meta.url).pathname;
const HOSTILE = new URL('./fixtures/hostile.mjs', import.meta.url).pathname;

/**
 * Starts a node process on `script` with `env` added to this one's, optionally under a
 * descriptor limit (a shell wrapper that execs node, so the pid is node's). Returns the child,
 * with `call(cmd, args)` (one command, its answer), `next(event)` (the next unsolicited event of
 * that name), `events` (all of them so far), `stderr` (all of it so far) and `exited`.
 */
function startNode(script, { env = {}, args = [], fdLimit = 0 } = {}) {
  const argv = [script, ...args];
  const child = fdLimit
    ? spawn('/bin/sh', ['-c', `ulimit -n ${fdLimit} && exec "$0" "$@"`, process.execPath, ...argv], { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, ...env } })
    : spawn(process.execPath, argv, { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  const events = eventQueue(`process ${script.split('/').pop()}`);
  const answers = new Map();
  child.events = [];
  child.stderr.setEncoding('utf8');
  child.stderrText = '';
  child.stderr.on('data', (d) => { child.stderrText += d; });
  createInterface({ input: child.stdout }).on('line', (line) => {
    let message;
    try { message = JSON.parse(line); } catch { message = { event: 'stdout', line }; }
    if (message.id !== undefined) {
      const waiter = answers.get(message.id);
      answers.delete(message.id);
      waiter?.(message);
      return;
    }
    child.events.push(message);
    events.push(message);
  });
  child.exited = new Promise((resolve) => child.on('exit', (code, signal) => {
    for (const waiter of answers.values()) waiter({ error: `the process exited (${signal ?? code})` });
    answers.clear();
    resolve({ code, signal });
  }));
  let nextId = 0;
  child.call = (cmd, args = {}, ms = 30_000) => new Promise((resolve, reject) => {
    const id = ++nextId;
    const timer = setTimeout(() => { answers.delete(id); reject(new Error(`'${cmd}' not answered within ${ms} ms; stderr: ${child.stderrText.slice(-2000)}`)); }, ms);
    answers.set(id, (m) => {
      clearTimeout(timer);
      if (m.error !== undefined) reject(new Error(`'${cmd}' failed in pid ${child.pid}: ${m.error}`));
      else resolve(m.result);
    });
    child.stdin.write(JSON.stringify({ id, cmd, ...args }) + '\n');
  });
  child.next = events.next;
  child.stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await child.exited;
  };
  return child;
}

/** fixtures/peer.mjs in a process of its own; resolves once it is ready. */
export async function startPeer(options = {}) {
  const child = startNode(PEER, options);
  await child.next('ready', 15_000);
  return child;
}

/** fixtures/hostile.mjs (a hand-made link initiator that breaks the rules) doing `scenario`. */
export function startHostile(controlPath, port, scenario, options = {}) {
  return startNode(HOSTILE, { ...options, args: [controlPath, String(port), scenario] });
}

/** Descriptors of process `pid`, as "fd -> target" (sorted). */
export function fdsOf(pid) {
  const out = [];
  for (const fd of fs.readdirSync(`/proc/${pid}/fd`)) {
    try { out.push(`${fd} -> ${fs.readlinkSync(`/proc/${pid}/fd/${fd}`)}`); } catch { /* closed meanwhile */ }
  }
  return out.sort((a, b) => parseInt(a, 10) - parseInt(b, 10));
}

/** The descriptors in `now` that are not in `before`, and the other way round. */
export function fdDiff(before, now) {
  return { added: now.filter((x) => !before.includes(x)), removed: before.filter((x) => !now.includes(x)) };
}

/** Lines of /proc/<pid>/maps that map a link region. */
export function linkMappings(pid) {
  return fs.readFileSync(`/proc/${pid}/maps`, 'utf8').split('\n').filter((l) => l.includes('xway-link'));
}

/** The link regions (memfds) process `pid` holds: fd, size, and bytes allocated (st_blocks * 512). */
export function linkRegions(pid) {
  const out = [];
  for (const entry of fdsOf(pid)) {
    const [fd, target] = entry.split(' -> ');
    if (!target.startsWith('/memfd:xway-link')) continue;
    try {
      const st = fs.statSync(`/proc/${pid}/fd/${fd}`);
      out.push({ fd: Number(fd), size: st.size, allocated: st.blocks * 512, ino: st.ino });
    } catch { /* closed meanwhile */ }
  }
  return out;
}

const CLK_TCK = 100; // USER_HZ on Linux

/** CPU seconds (user + system) process `pid` has used. */
export function cpuSeconds(pid) {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLK_TCK; // utime, stime (fields 14, 15)
}

/** Times the main thread of `pid` has slept and been woken (voluntary context switches). */
export function wakeUps(pid) {
  const status = fs.readFileSync(`/proc/${pid}/task/${pid}/status`, 'utf8');
  return Number(status.match(/^voluntary_ctxt_switches:\s+(\d+)/m)[1]);
}

/** Resident memory of `pid` in KiB, and its shared-memory part. */
export function residentKiB(pid) {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = (key) => Number(status.match(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm'))?.[1] ?? NaN);
  return { rss: kib('VmRSS'), shmem: kib('RssShmem') };
}

/** Waits until `read()` equals `expected` (compared as JSON), or `ms` pass; returns the last value. */
export async function settle(read, expected, ms) {
  const deadline = Date.now() + ms;
  let value = read();
  while (JSON.stringify(value) !== JSON.stringify(expected) && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 10));
    value = read();
  }
  return value;
}
