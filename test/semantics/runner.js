// Runs one role (server or client) of a scenario wherever it is placed: in the test process, in
// the long-lived peer of a mode (a child process or a worker thread), or in a dedicated child or
// worker that the scenario lets exit, be killed or terminated. The same code runs in all of them,
// so a role behaves the same wherever it runs; only the messages to the driver travel.
//
// Messages (plain JSON, through `send` and `handle`):
// (every message names the scenario run `id` and the `role` it is for or from)
//   driver -> runner  {op: 'start', id, role, scenario, mode, port, host, listenHost, alone}
//                     {op: 'barrier', id, role, name}   both roles reached barrier `name`
//                     {op: 'dead', id, role}      the other role's process or thread is gone
//                     {op: 'finish', id, role, connects}  the client role is done (and saw
//                                                 `connects` connections connect): the server role ends
//   runner -> driver  {op: 'listening', id, role, port, address}
//                     {op: 'barrier', id, role, name}
//                     {op: 'die', id, role, how}  kill me (SIGKILL, or terminate for a worker)
//                     {op: 'result', id, role, logs, snaps, errors, connects}
// Nothing of this ever travels through a connection under test.
import net from 'node:net';
import { scenario as scenarioNamed } from './scenarios.js';
import { track, snapshot, errorInfo } from './recorder.js';

/** Any single wait for something that should happen at once (noise on 2 shared cores allowed;
 *  XWAY_SEMANTICS_LIMIT_MS for a slower machine, such as Xen under emulation). */
export const LIMIT = Number(process.env.XWAY_SEMANTICS_LIMIT_MS || 3000);

const here = new URL('.', import.meta.url);
const apis = new Map();

/** The socket API of a mode: node:net itself, or xway with the mode's transport. */
async function apiFor(mode) {
  if (apis.has(mode.name)) return apis.get(mode.name);
  let api;
  if (mode.api === 'net') {
    api = { createServer: (options, listener) => net.createServer(options, listener), connect: (options) => net.connect(options) };
  } else {
    const { default: xway } = await import(new URL('../../dist/index.js', here));
    const transport = mode.transport;
    api = {
      createServer: (options, listener) => xway.createServer({ transport, ...options }, listener),
      connect: (options) => xway.connect({ transport, ...(mode.ringCapacity ? { ringCapacity: mode.ringCapacity } : {}), ...options }),
    };
  }
  apis.set(mode.name, api);
  return api;
}

/** A wait that ran out of time, or can no longer be met: ends the role's code, logged. */
class Timeout extends Error {}
class Unmet extends Timeout {}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** The context a role's code gets: its sockets' logs, waits, barriers, and its end of the stage. */
class Session {
  constructor(runner, msg, api) {
    this.runner = runner;
    this.id = msg.id;
    this.role = msg.role;
    this.mode = msg.mode.name;
    /** true when the connection under test is a ring (the mode forces one). */
    this.ring = msg.mode.transport === 'force';
    this.platform = msg.mode.platform ?? null;
    this.port = msg.port;
    this.host = msg.host;
    this.listenHost = msg.listenHost;
    this.alone = msg.alone;
    this.api = api;
    this.scenario = scenarioNamed(msg.scenario);
    this.logs = {};
    this.snaps = {};
    this.errors = {};
    this.sockets = new Map();
    this.tasks = [];
    this.barriers = new Map();
    this.deadPeer = null;
    this.server = null;
    this.accepted = 0;
    this.dropped = 0;
    /** Connections of the client role that connected: the server role waits to have seen them. */
    this.connects = 0;
  }

  log(label) {
    return (this.logs[label] ??= []);
  }

  complain(text) {
    this.log(`!${this.role}`).push(text);
  }

  /** Records `socket` under `label` (its events, errors and snapshots). */
  track(socket, label) {
    if (this.sockets.has(label)) throw new Error(`label ${label} used twice`);
    this.sockets.set(label, socket);
    socket.semanticsLabel = label;
    socket.once('close', () => (socket.semanticsClosed = true));
    track(socket, this.log(label), (this.errors[label] ??= []));
    return socket;
  }

  note(label, text) {
    this.log(label).push(text);
  }

  /** Records the socket's properties now, as snapshot `name` of its label. */
  snap(socket, name) {
    (this.snaps[socket.semanticsLabel] ??= {})[name] = snapshot(socket);
  }

  /** socket.write with its callback's outcome logged as `<tag>:ok` or `<tag>:<code>`; returns write()'s value. */
  write(socket, data, tag, encoding) {
    const log = this.log(socket.semanticsLabel);
    return socket.write(data, encoding, (err) => log.push(`${tag}:${err ? err.code ?? err.name : 'ok'}`));
  }

  /** ctx.write, resolving when its callback ran (with the error, if any). */
  written(socket, data, tag) {
    return this.within(new Promise((resolve) => {
      const log = this.log(socket.semanticsLabel);
      socket.write(data, (err) => {
        log.push(`${tag}:${err ? err.code ?? err.name : 'ok'}`);
        resolve(err);
      });
    }), `write ${tag} completes`);
  }

  /** The mode's connect with this session's port and host; checks the transport once connected. */
  connect(options = {}, label = 'client') {
    const socket = this.api.connect({ port: this.port, host: this.host, ...options });
    this.track(socket, label);
    socket.once('connect', () => this.connects++);
    if (!('transport' in options)) socket.once('connect', () => this.checkTransport(socket));
    return socket;
  }

  /** A connection that should ride the mode's transport and does not is no test of it. */
  checkTransport(socket) {
    const want = this.mode === 'net' ? undefined : this.ring ? 'ring' : 'tcp';
    if (socket.transport !== want) this.complain(`${socket.semanticsLabel} on transport ${socket.transport}, not ${want}`);
    else if (this.ring && socket.platform !== this.platform) this.complain(`${socket.semanticsLabel} on platform ${socket.platform}, not ${this.platform}`);
  }

  /** Runs role code as a task of this session: a throw or a timed-out wait is logged, not fatal. */
  run(fn) {
    const task = (async () => {
      try {
        await fn();
      } catch (err) {
        this.complain(err instanceof Unmet ? `unmet: ${err.message}` : err instanceof Timeout ? `timeout: ${err.message}` : `threw: ${err.stack ?? err}`);
      }
    })();
    this.tasks.push(task);
    return task;
  }

  /** `promise`, or a Timeout (ends the role's code) after `ms`. A wait that role code started
   *  and then did not await (it failed earlier) must not become an unhandled rejection. */
  within(promise, what, ms = LIMIT) {
    let timer;
    const bounded = Promise.race([
      Promise.resolve(promise).finally(() => clearTimeout(timer)),
      new Promise((_, reject) => { timer = setTimeout(() => reject(new Timeout(`${what} (${ms} ms)`)), ms); }),
    ]);
    bounded.catch(() => {});
    return bounded;
  }

  /** The next `event` of `emitter` (its arguments), within LIMIT. A socket that closes first
   *  will not emit it: that fails the wait at once instead of at the bound. */
  event(emitter, event, what = event, ms = LIMIT) {
    const socket = emitter instanceof net.Socket && event !== 'close';
    return this.within(new Promise((resolve, reject) => {
      if (socket && emitter.semanticsClosed) return reject(new Unmet(`${what}: the socket had closed`));
      const onClose = () => {
        emitter.off(event, onEvent);
        reject(new Unmet(`${what}: the socket closed first`));
      };
      const onEvent = (...args) => {
        if (socket) emitter.off('close', onClose);
        resolve(args);
      };
      emitter.once(event, onEvent);
      if (socket) emitter.once('close', onClose);
    }), `${what}`, ms);
  }

  /** Resolves when `socket` has closed (at once if it has). */
  closed(socket, ms = LIMIT) {
    if (socket.semanticsClosed) return Promise.resolve();
    return this.within(new Promise((resolve) => socket.once('close', () => resolve())), `${socket.semanticsLabel} closes`, ms);
  }

  async until(condition, what, ms = LIMIT) {
    const deadline = Date.now() + ms;
    while (!condition()) {
      if (Date.now() > deadline) throw new Timeout(`${what} (${ms} ms)`);
      await sleep(2);
    }
  }

  sleep(ms) {
    return sleep(ms);
  }

  /** Waits until the other role has reached barrier `name` too. */
  barrier(name) {
    const waiter = { resolve: null };
    const reached = new Promise((resolve) => (waiter.resolve = resolve));
    this.barriers.set(name, waiter);
    this.runner.send({ op: 'barrier', id: this.id, role: this.role, name });
    return this.within(reached, `barrier '${name}'`);
  }

  /** Resolves when the driver saw the other role's process or thread end. */
  peerDead(ms = LIMIT) {
    if (this.deadPeer === true) return Promise.resolve();
    return this.within(new Promise((resolve) => (this.deadPeer = resolve)), 'the peer dies', ms);
  }

  /** Ends this role's process or thread: 'exit' (process.exit()) or 'kill' (SIGKILL from the
   *  driver; a worker thread is terminated). Only in a dedicated host. `busy`: after asking for
   *  the kill, spin in this tick until it lands, so that nothing this tick left for its end runs. */
  die(how, { busy = false } = {}) {
    if (!this.runner.dedicated) throw new Error('die() outside a dedicated host');
    if (how === 'exit') process.exit(0);
    this.runner.send({ op: 'die', id: this.id, role: this.role, how });
    if (busy) for (;;) { /* the driver's SIGKILL or terminate() ends this */ }
    return new Promise(() => {});
  }

  /** A TCP port nobody listens on (just released). */
  async freePort() {
    const s = net.createServer().listen(0, '127.0.0.1');
    await this.event(s, 'listening');
    const { port } = s.address();
    await new Promise((resolve) => s.close(resolve));
    return port;
  }

  /** Waits for every task and every socket of this session, then reports. A server role first
   *  waits to have seen (accepted or dropped) the `connects` connections the client saw connect. */
  async finish(connects = 0) {
    if (this.server) {
      try {
        await this.until(() => this.accepted + this.dropped >= connects, `the server sees the client's ${connects} connection(s)`);
      } catch (err) {
        this.complain(err.message);
      }
    }
    const done = Promise.all(this.tasks);
    try {
      await this.within(done, 'the role code ends', 2 * LIMIT);
    } catch {
      this.complain('role code still running after finish');
    }
    // A role that must show its process ends by itself leaves its sockets as they are (an
    // unref'd connection stays open); any other role's sockets must all have closed.
    for (const [label, socket] of this.alone ? [] : this.sockets) {
      try {
        await this.closed(socket);
      } catch {
        this.complain(`${label} still open`);
        socket.destroy();
      }
    }
    if (this.server) {
      this.serverFrozen = true; // the harness's own close is not the scenario's
      if (this.server.listening) {
        this.server.close();
        try {
          await this.event(this.server, 'close', 'the server closes');
        } catch {
          this.complain('server does not close after its connections did');
        }
      }
    }
    this.runner.send({ op: 'result', id: this.id, role: this.role, logs: this.logs, snaps: this.snaps, errors: this.errors, connects: this.connects });
    this.runner.sessions.delete(`${this.id}/${this.role}`);
    if (this.alone) this.runner.letExit();
  }
}

/** Stages roles on request of the driver; one per process or thread that hosts roles. */
export class RoleRunner {
  /** @param send posts a message to the driver; @param letExit drops whatever keeps this host
   *  alive for the driver's sake (for roles that must show their process exits by itself). */
  constructor(send, { dedicated = false, letExit = () => {} } = {}) {
    this.send = send;
    this.dedicated = dedicated;
    this.letExit = letExit;
    this.sessions = new Map();
  }

  async handle(msg) {
    if (msg.op === 'start') return this.#start(msg);
    const session = this.sessions.get(`${msg.id}/${msg.role}`);
    if (!session) return;
    if (msg.op === 'barrier') session.barriers.get(msg.name)?.resolve();
    else if (msg.op === 'dead') {
      if (typeof session.deadPeer === 'function') session.deadPeer();
      session.deadPeer = true;
    } else if (msg.op === 'finish') session.finish(msg.connects);
  }

  async #start(msg) {
    const api = await apiFor(msg.mode);
    const session = new Session(this, msg, api);
    this.sessions.set(`${msg.id}/${msg.role}`, session);
    const role = session.scenario[msg.role];
    if (msg.role === 'client') {
      session.run(() => role.run(session));
      await Promise.all(session.tasks);
      return session.finish();
    }
    await this.#serve(session, role);
  }

  async #serve(session, role) {
    const listenerLog = session.log('listener');
    const note = (entry) => { if (!session.serverFrozen) listenerLog.push(entry); };
    const server = api(session).createServer(role.options ?? {});
    server.on('connection', () => note('connection'));
    server.on('connection', (socket) => {
      const n = ++session.accepted;
      const label = n === 1 ? 'server' : `server${n}`;
      session.track(socket, label);
      if (session.mode !== 'net') session.checkTransport(socket);
      if (role.connection) session.run(() => role.connection(socket, session, n));
    });
    session.server = server;
    server.on('close', () => note('close'));
    server.on('drop', () => {
      session.dropped++;
      note('drop');
    });
    // xway's own: the ring endpoint could not be opened, so this server serves TCP only and a
    // ring mode tests nothing. (A known cause: an entry left by a terminated worker's server.)
    server.on('xwayError', (err) => session.complain(`xwayError: ${err.code ?? ''} ${err.message}`));
    server.on('error', (err) => {
      note(`error:${err.code}`);
      (session.errors.listener ??= []).push(errorInfo(err));
    });
    server.listen({ port: 0, host: session.listenHost, ...role.listen });
    try {
      await session.event(server, 'listening');
    } catch {
      session.complain('server does not listen');
    }
    const address = server.address();
    this.send({ op: 'listening', id: session.id, role: 'server', port: address?.port, address });
    if (role.setup) session.run(() => role.setup(server, session));
  }
}

const api = (session) => session.api;
