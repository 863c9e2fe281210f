// The driver of the differential semantics suite: places a scenario's two roles (./runner.js) in
// the process, thread or dedicated child each needs for a mode, routes their barriers and deaths,
// collects what each observed, and compares that with the scenario's one expected outcome.
import { spawn } from 'node:child_process';
import { Worker } from 'node:worker_threads';
import { RoleRunner, LIMIT } from './runner.js';
import { UNDEFINED } from './recorder.js';

export { LIMIT };

const PEER = new URL('./fixtures/peer.js', import.meta.url);

/**
 * The modes a scenario runs in. `peer`: where the server role runs by default (the client role
 * runs in the test process); `api`: node:net itself, or xway with `transport`.
 *   net      node:net on both ends, server in another process: the reference.
 *   tcp      xway's API with transport 'off' (and XWAY=off in the peer): what xway hands out for TCP.
 *   threads  a ring, the server in a worker thread of the test process (threads platform).
 *   same     a ring, the server in the test process's own thread (threads platform).
 *   host     a ring, the server in another process (host platform: shared segment, eventfd).
 *   xen      a ring between two processes of a Xen dom0 (test/xen/semantics.test.js only).
 */
export const MODES = {
  net: { name: 'net', api: 'net', peer: 'child', deathsIn: ['process', 'thread'] },
  tcp: { name: 'tcp', api: 'xway', transport: 'off', env: { XWAY: 'off' }, peer: 'child', deathsIn: ['process', 'thread'] },
  threads: { name: 'threads', api: 'xway', transport: 'force', platform: 'threads', peer: 'worker', deathsIn: ['thread'] },
  same: { name: 'same', api: 'xway', transport: 'force', platform: 'threads', peer: 'local', deathsIn: [] },
  host: { name: 'host', api: 'xway', transport: 'force', platform: 'host', peer: 'child', deathsIn: ['process'] },
};

/** A mode for Xen: clients connect to `address` (recorded for dom0 by xen-permit.sh). Its rings
 *  hold 256 KiB, as the host's do by default and as the scenarios presume (a Xen client's default
 *  is 64 KiB, to fit gntalloc's page budget: a paused reader's ring and read-ahead then hold less
 *  than UNREAD, where TCP's buffers hold it all). */
export function xenMode(address) {
  return { name: 'xen', api: 'xway', transport: 'force', platform: 'xen', peer: 'child', deathsIn: ['process'], connectHost: address, listenHost: '0.0.0.0', remote: true, ringCapacity: 256 * 1024 };
}

/** Whether `scenario` means anything in `mode` (a process death between threads, say, does not). */
export function applies(mode, scenario) {
  if (scenario.modes && !scenario.modes.includes(mode.name)) return false;
  if (scenario.dedicated && !mode.deathsIn.includes(scenario.dedicated.in)) return false;
  if (scenario.loopback && mode.remote) return false;
  return true;
}

// ---- hosts: where a role runs -----------------------------------------------------------------

function childHost(env, dedicated) {
  const child = spawn(process.execPath, [PEER.pathname, dedicated ? 'dedicated' : 'peer'], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'], env });
  const host = {
    kind: 'child',
    post: (m) => { try { child.send(m); } catch { /* gone */ } },
    kill: () => child.kill('SIGKILL'),
    exited: new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal }))),
  };
  child.on('message', (m) => host.onmessage(m));
  child.on('error', () => {});
  return host;
}

function workerHost(env, dedicated) {
  const worker = new Worker(PEER, { workerData: { dedicated }, env });
  const host = {
    kind: 'worker',
    post: (m) => { try { worker.postMessage(m); } catch { /* gone */ } },
    kill: () => worker.terminate(),
    exited: new Promise((resolve) => worker.on('exit', (code) => resolve({ code, signal: null }))),
  };
  worker.on('message', (m) => host.onmessage(m));
  worker.on('error', (err) => host.onmessage({ op: 'fatal', error: String(err?.stack ?? err) }));
  return host;
}

/** Roles in the test process's own thread; messages still go one turn later, as they would. */
function localHost() {
  const host = { kind: 'local', exited: new Promise(() => {}), kill: () => {} };
  const runner = new RoleRunner((m) => process.nextTick(() => host.onmessage(m)));
  host.post = (m) => process.nextTick(() => runner.handle(m));
  process.nextTick(() => host.onmessage({ op: 'up' }));
  return host;
}

const withTimeout = (promise, ms, what) => {
  let timer;
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(`${what}: nothing within ${ms} ms`)), ms); }),
  ]);
};

// ---- the driver -------------------------------------------------------------------------------

export class Driver {
  /** @param env the environment of child processes and workers (XWAY_DIR above all). */
  constructor({ env }) {
    this.env = env;
    this.peers = new Map();
    this.runs = new Map();
    this.seq = 0;
  }

  #start(mode, kind, dedicated) {
    const env = { ...this.env, ...mode.env };
    const host = kind === 'child' ? childHost(env, dedicated) : kind === 'worker' ? workerHost(env, dedicated) : localHost();
    host.up = new Promise((resolve) => (host.resolveUp = resolve));
    host.onmessage = (m) => this.#route(host, m);
    host.exited.then((how) => {
      host.gone = how;
      for (const run of this.runs.values()) run.hostGone(host, how);
    });
    return host;
  }

  async #host(mode, kind) {
    if (kind === 'peer') {
      let peer = this.peers.get(mode.name);
      if (!peer || peer.gone || peer.fatal) {
        peer = this.#start(mode, mode.peer, false);
        this.peers.set(mode.name, peer);
      }
      await withTimeout(peer.up, 10 * LIMIT, `the ${mode.name} peer starts`);
      return peer;
    }
    const host = kind === 'local' ? this.local ??= this.#start(mode, 'local', false) : this.#start(mode, kind, true);
    await withTimeout(host.up, 10 * LIMIT, `a ${kind} host starts`);
    return host;
  }

  #route(host, m) {
    if (m.op === 'up') return host.resolveUp();
    if (m.op === 'fatal') {
      host.fatal = m.error;
      for (const run of this.runs.values()) run.fatal(host, m.error);
      return;
    }
    this.runs.get(m.id)?.message(host, m);
  }

  /** Runs `scenario` once in `mode`; resolves with what the roles observed. */
  async run(mode, scenario) {
    const id = ++this.seq;
    const ded = scenario.dedicated;
    const where = {
      server: ded?.role === 'server' ? (ded.in === 'process' ? 'child' : 'worker') : ded ? 'local' : 'peer',
      client: ded?.role === 'client' ? (ded.in === 'process' ? 'child' : 'worker') : 'local',
    };
    const run = new Run(id, mode, scenario);
    this.runs.set(id, run);
    const hosts = [];
    try {
      const base = { id, scenario: scenario.name, mode: { name: mode.name, api: mode.api, transport: mode.transport, platform: mode.platform, ringCapacity: mode.ringCapacity } };
      let port;
      if (scenario.server) {
        const host = await this.#host(mode, where.server);
        hosts.push(host);
        run.attach('server', host);
        host.post({ ...base, op: 'start', role: 'server', listenHost: scenario.server.listen?.host ?? mode.listenHost ?? '127.0.0.1', alone: ded?.role === 'server' && ded.alone });
        ({ port } = await withTimeout(run.listening, 2 * LIMIT, 'the server role listens'));
      }
      const host = await this.#host(mode, where.client);
      hosts.push(host);
      run.attach('client', host);
      host.post({ ...base, op: 'start', role: 'client', port, host: mode.connectHost ?? '127.0.0.1', alone: ded?.role === 'client' && ded.alone });
      await withTimeout(run.done('client'), scenario.bound ?? 6 * LIMIT, 'the client role ends');
      if (scenario.server) {
        const connects = run.results.client?.connects ?? 0;
        if (!run.ended('server')) run.hosts.server.post({ op: 'finish', id, role: 'server', connects });
        await withTimeout(run.done('server'), 4 * LIMIT, 'the server role ends');
      }
      if (ded?.alone) {
        // The host of that role must now end by itself: nothing of the harness holds it.
        const dedicated = run.hosts[ded.role];
        const exit = await Promise.race([dedicated.exited, new Promise((r) => setTimeout(() => r(null), ded.exitBound ?? LIMIT))]);
        run.logs.process = [exit ? `exit:${exit.signal ?? exit.code}` : 'still running'];
      }
    } catch (err) {
      run.complain(err.message);
      // A peer that let a role hang is not trusted with the next scenario.
      for (const h of hosts) if (h.kind !== 'local') h.kill();
    } finally {
      for (const h of hosts) {
        if (h.kind === 'local' || this.peers.get(mode.name) === h) continue;
        if (!h.gone) h.kill();
        await withTimeout(h.exited, 2 * LIMIT, 'a dedicated host ends').catch(() => {});
      }
      this.runs.delete(id);
    }
    return run.observation();
  }

  async close() {
    for (const peer of this.peers.values()) {
      if (peer.gone) continue;
      peer.kill();
      await withTimeout(peer.exited, 2 * LIMIT, 'a peer ends').catch(() => {});
    }
    this.peers.clear();
  }
}

/** One run of one scenario: its roles' hosts, barriers and results. */
class Run {
  constructor(id, mode, scenario) {
    this.id = id;
    this.mode = mode;
    this.scenario = scenario;
    this.hosts = {};
    this.results = {};
    this.waiters = {};
    this.exits = {};
    this.arrivals = new Map();
    this.logs = {};
    this.listening = new Promise((resolve) => (this.resolveListening = resolve));
  }

  attach(role, host) {
    this.hosts[role] = host;
    this.results[role] ??= undefined;
  }

  roles() {
    return Object.keys(this.hosts);
  }

  other(role) {
    return role === 'server' ? 'client' : 'server';
  }

  ended(role) {
    return this.results[role] !== undefined;
  }

  done(role) {
    if (this.ended(role)) return Promise.resolve();
    return new Promise((resolve) => ((this.waiters[role] ??= []).push(resolve)));
  }

  #end(role, result) {
    if (this.ended(role)) return;
    this.results[role] = result;
    for (const resolve of this.waiters[role] ?? []) resolve();
  }

  complain(text) {
    (this.logs['!driver'] ??= []).push(text);
  }

  roleOf(host) {
    return this.roles().filter((r) => this.hosts[r] === host);
  }

  message(host, m) {
    if (m.op === 'listening') this.resolveListening(m);
    else if (m.op === 'result') this.#end(m.role, m);
    else if (m.op === 'die') host.kill();
    else if (m.op === 'barrier') {
      const seen = this.arrivals.get(m.name) ?? new Set();
      seen.add(m.role);
      this.arrivals.set(m.name, seen);
      // Both roles there (or the scenario has just one): release every role that waits.
      const expected = this.scenario.server ? 2 : 1;
      if (seen.size >= expected) for (const r of seen) this.hosts[r].post({ op: 'barrier', id: this.id, role: r, name: m.name });
    }
  }

  fatal(host, error) {
    for (const role of this.roleOf(host)) {
      this.complain(`the ${role} role's host failed: ${error}`);
      this.#end(role, null);
    }
  }

  hostGone(host, how) {
    for (const role of this.roleOf(host)) {
      this.exits[role] = how;
      if (!this.ended(role)) this.#end(role, null); // died, as the scenario may have meant
      const other = this.hosts[this.other(role)];
      if (other && other !== host) other.post({ op: 'dead', id: this.id, role: this.other(role) });
    }
  }

  observation() {
    const obs = { logs: { ...this.logs }, snaps: {}, errors: {}, exits: this.exits };
    for (const result of Object.values(this.results)) {
      if (!result) continue;
      Object.assign(obs.logs, result.logs);
      Object.assign(obs.snaps, result.snaps);
      Object.assign(obs.errors, result.errors);
    }
    return obs;
  }
}

// ---- comparing with the one expected outcome --------------------------------------------------

const show = (item) => (Array.isArray(item) ? `{${item.join(' | ')}}` : String(item));

/**
 * Whether `actual` (a log) is `expected`: an array whose items are strings (one entry each) or
 * arrays of strings (those entries, contiguous, in any order — used only where TCP's own order
 * varies, and each such use says why). `{ oneOf: [a, b] }` matches either sequence: used only where
 * node:net itself gives one or the other from run to run, with a comment saying why.
 */
export function matches(expected, actual) {
  if (!Array.isArray(expected)) return expected.oneOf.some((e) => matches(e, actual));
  let i = 0;
  for (const item of expected) {
    if (Array.isArray(item)) {
      const got = actual.slice(i, i + item.length);
      if (got.length !== item.length || [...got].sort().join('\n') !== [...item].sort().join('\n')) return false;
      i += item.length;
    } else {
      if (actual[i] !== item) return false;
      i++;
    }
  }
  return i === actual.length;
}

const showSequence = (expected) => (Array.isArray(expected)
  ? `[${expected.map(show).join(', ')}]`
  : expected.oneOf.map(showSequence).join(' or '));

/** The entries of `log` a scenario compares (all, unless it names the prefixes it observes). */
function observed(scenario, label, log) {
  const prefixes = Array.isArray(scenario.observe) ? scenario.observe : scenario.observe?.[label];
  if (!prefixes) return log;
  return log.filter((entry) => prefixes.some((p) => entry === p || entry.startsWith(`${p}:`) || entry.startsWith(`${p} `)));
}

/** JSON, but with undefined shown (a property net leaves undefined is a value to compare). */
const stringify = (v) => JSON.stringify(v, (_, x) => (x === undefined ? UNDEFINED : x));

/** The differences between `obs` and the scenario's expected outcome, as readable lines. */
export function compare(scenario, obs, mode) {
  const problems = [];
  for (const [label, log] of Object.entries(obs.logs)) if (label.startsWith('!')) problems.push(`${label}: ${log.join('; ')}`);
  const expect = typeof scenario.expect === 'function' ? scenario.expect(mode) : scenario.expect;
  for (const [label, expected] of Object.entries(expect ?? {})) {
    const actual = observed(scenario, label, obs.logs[label] ?? []);
    if (!matches(expected, actual)) problems.push(`${label}: expected ${showSequence(expected)}, got [${actual.join(', ')}]`);
  }
  if (scenario.check) {
    const t = {
      eq: (actual, expected, what) => {
        const a = stringify(actual), e = stringify(expected);
        if (a !== e) problems.push(`${what}: expected ${e}, got ${a}`);
      },
      ok: (cond, what) => { if (!cond) problems.push(`${what}: not true`); },
    };
    try {
      scenario.check(obs, t, mode);
    } catch (err) {
      problems.push(`check threw: ${err.stack}`);
    }
  }
  return problems;
}
