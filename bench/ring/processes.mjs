// Running one cross-process data point: two child processes (children/*.mjs), one listening and
// one connecting, set up, started together, and both required to report and then exit by
// themselves. Whatever goes wrong (a child crashes, hangs, or lingers after its result), the point
// fails and no child outlives it: the ones still running are killed.

import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const here = (p) => fileURLToPath(new URL(p, import.meta.url));
/** After both results, children have this long to close everything and exit by themselves. */
const EXIT_GRACE_MS = 3000;

class Child {
  constructor(script, config, name) {
    this.name = name;
    this.stderr = '';
    this.messages = [];
    this.waiters = [];
    this.exit = null;
    this.proc = fork(here(script), [JSON.stringify(config)], {
      stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
      execArgv: [],
      serialization: 'json',
    });
    this.proc.stderr.setEncoding('utf8');
    this.proc.stderr.on('data', (d) => { this.stderr = (this.stderr + d).slice(-4000); });
    this.proc.on('message', (m) => { this.messages.push(m); this.#poke(); });
    this.proc.on('error', (err) => { this.error ??= err; this.#poke(); });
    this.exited = new Promise((resolve) => this.proc.on('exit', (code, signal) => {
      this.exit = { code, signal };
      this.#poke();
      resolve(this.exit);
    }));
  }

  /** The first message that has `key`; rejects if the child exits or fails before sending it. */
  expect(key) {
    return new Promise((resolve, reject) => {
      const test = () => {
        const m = this.messages.find((x) => x && key in x);
        if (m) return resolve(m[key]), true;
        if (this.error || this.exit) return reject(new Error(this.why(`before '${key}'`))), true;
        return false;
      };
      if (!test()) this.waiters.push(test);
    });
  }

  why(when) {
    const how = this.error ? `failed (${this.error.message})`
      : this.exit.signal ? `was killed (${this.exit.signal})` : `exited with code ${this.exit.code}`;
    const err = lastError(this.stderr);
    return `${this.name} child ${how} ${when}${err ? `: ${err}` : ''}`;
  }

  send(m) {
    this.proc.send(m);
  }

  get running() {
    return this.exit === null;
  }

  #poke() {
    this.waiters = this.waiters.filter((test) => !test());
  }
}

/** The most telling line of a child's stderr (the thrown error's message). */
function lastError(text) {
  const lines = text.split('\n').map((l) => l.trim()).filter(Boolean);
  return lines.find((l) => /^\w*Error\b|^Error:/.test(l)) ?? lines.at(-1) ?? '';
}

/** Runs one point of a process peer; resolves to both sides' results, keyed by role. */
export async function runProcesses(peer, col, o, { capacity, socketPath, watchdogMs }) {
  const [listenRole, connectRole] = col.mode === 'stream' ? ['consumer', 'producer'] : ['pong', 'ping'];
  const base = { transport: peer.transport, policy: peer.policy, mode: col.mode, chunk: col.chunk, capacity,
    warmMs: o.warmup * 1e3, durMs: o.duration * 1e3 };
  const children = [];
  let timer;
  const watchdog = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error('watchdog: no result in time, children killed')), watchdogMs);
  });
  watchdog.catch(() => {}); // only ever awaited through timed()
  const timed = (p) => Promise.race([p, watchdog]);
  try {
    // Both start at once (a Node start-up is tens of ms); the connector learns the address later.
    const listener = new Child(peer.script, { ...base, role: listenRole, listen: socketPath }, listenRole);
    const connector = new Child(peer.script, { ...base, role: connectRole }, connectRole);
    children.push(listener, connector);
    connector.send({ connect: await timed(listener.expect('listening')) });
    await timed(Promise.all(children.map((c) => c.expect('ready'))));
    for (const c of children) c.send({ go: true });
    // Both outcomes, so that a side that reports a stall is named even when the other then
    // crashed on the reset that follows.
    const settled = await timed(Promise.allSettled(children.map((c) => c.expect('result'))));
    const crashed = settled.find((x) => x.status === 'rejected');
    if (crashed) {
      const stalled = children.filter((c, i) => settled[i].status === 'fulfilled' && settled[i].value.stuck);
      throw new Error(stalled.length ? `${stalled[0].name} stalled (no progress by its deadline); then ${crashed.reason.message}` : crashed.reason.message);
    }
    const results = settled.map((x) => x.value);
    // Both must now leave by themselves: a handle left open would keep a real program alive.
    let grace;
    const late = new Promise((resolve) => { grace = setTimeout(resolve, EXIT_GRACE_MS); });
    await Promise.race([Promise.all(children.map((c) => c.exited)), late]);
    clearTimeout(grace);
    for (const c of children) {
      if (c.running) throw new Error(`${c.name} child did not exit within ${EXIT_GRACE_MS} ms of its result (killed)`);
      if (c.exit.code !== 0) throw new Error(c.why('after its result'));
    }
    return { [listenRole]: results[0], [connectRole]: results[1] };
  } finally {
    clearTimeout(timer);
    for (const c of children) if (c.running) c.proc.kill('SIGKILL');
    await Promise.all(children.map((c) => c.exited));
  }
}
