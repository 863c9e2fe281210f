// The XWAY switch around the socket layer: which transport a connect() takes (registry entries,
// stale ones, set-up failures and the TCP fallback, XWAY=off|auto|force, what is local), and what
// server.close() and listen({ signal }) do to the ring endpoint. What a program observes of a
// connection — events, errors, teardown, counters, addresses — is in test/semantics/, where every
// scenario runs over TCP and every ring platform with node:net's outcome as the one expectation.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { once } from 'node:events';
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { within } from '../host/helpers.js';
import { pattern as random, rng } from '../semantics/bytes.js';

// A registry of our own, set before dist is loaded and handed to every child process.
const saved = { XWAY_DIR: process.env.XWAY_DIR, XWAY: process.env.XWAY };
const XWAY_DIR = fs.mkdtempSync(path.join(os.tmpdir(), 'xs-'));
process.env.XWAY_DIR = XWAY_DIR;
delete process.env.XWAY; // the per-call transport option decides, not the caller's environment

const { default: xway, isLocalHost, lookupEndpoint } = await import('../../dist/index.js');
const { registerEndpoint } = await import('../../dist/switch/registry.js');

const PEER = new URL('./fixtures/xway-peer.js', import.meta.url).pathname;
const KiB = 1024;
const LIMIT = 3000; // any single wait
const HOST = '127.0.0.1';

const MODES = [
  { name: 'ring', transport: 'force' },
  { name: 'tcp', transport: 'off' },
];

// ---- helpers ----------------------------------------------------------------------------------

/** Everything a scenario opens, closed in its `finally` whatever happened. */
function scope() {
  const sockets = new Set();
  const servers = new Set();
  const children = new Set();
  const cleanups = [];
  return {
    socket(s) {
      sockets.add(s);
      s.on('error', () => {}); // a late error during cleanup must not crash the run
      return s;
    },
    server(s) {
      servers.add(s);
      s.on('connection', (c) => this.socket(c));
      return s;
    },
    child(c) { children.add(c); return c; },
    defer(fn) { cleanups.push(fn); },
    async close() {
      for (const s of sockets) s.destroy();
      for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
      await within(LIMIT, Promise.all([...children].map((c) => c.exited)), 'children exited');
      for (const s of servers) {
        if (s.listening) {
          const closed = once(s, 'close');
          s.close();
          await within(LIMIT, closed, 'server closed');
        }
      }
      for (const fn of cleanups) await fn();
    },
  };
}

/** An xway server listening on 127.0.0.1:0 in this process. */
async function listen(sc, options = {}) {
  const server = sc.server(xway.createServer(options));
  server.listen(0, HOST);
  await within(LIMIT, once(server, 'listening'), 'listening');
  return server;
}

/** A client over `mode` to `server`, and the server's socket for it. */
async function connectTo(sc, mode, server, options = {}) {
  const accepted = new Promise((resolve) => server.once('connection', resolve));
  const client = xway.connect({ port: server.address().port, host: HOST, transport: mode.transport, ...options });
  const [peer] = await within(LIMIT, Promise.all([accepted, once(client, 'connect')]), `${mode.name} connect`);
  sc.socket(client);
  assert.is(client.transport, mode.name, 'client transport');
  assert.is(peer.transport, mode.name, 'server-side transport');
  return { client, peer };
}

async function pair(sc, mode, { server: serverOptions, client: clientOptions } = {}) {
  const server = await listen(sc, serverOptions);
  return { server, ...(await connectTo(sc, mode, server, clientOptions)) };
}

/** Resolves with everything read until 'end' (rejects on 'error'). */
const collect = (socket) => new Promise((resolve, reject) => {
  const parts = [];
  socket.on('data', (d) => parts.push(d)).once('end', () => resolve(Buffer.concat(parts))).once('error', reject);
});

/** Writes `data` in random-sized chunks (1 B to 64 KiB), honouring backpressure, then ends. */
async function writeAll(socket, data, seed) {
  const next = rng(seed);
  for (let off = 0; off < data.length;) {
    const n = 1 + (next() % (64 * KiB));
    const ok = socket.write(data.subarray(off, off + n));
    off += n;
    if (!ok) await once(socket, 'drain');
  }
  socket.end();
}

/** Starts fixtures/xway-peer.js with our XWAY_DIR; `next(event)` resolves with its next JSON line of that event. */
function startPeer(sc, args, env = {}) {
  const child = spawn(process.execPath, [PEER, ...args], { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, XWAY_DIR, ...env } });
  sc.child(child);
  const waiting = [];
  const seen = [];
  child.exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  createInterface({ input: child.stdout }).on('line', (line) => {
    const message = JSON.parse(line);
    const i = waiting.findIndex((w) => w.event === message.event);
    if (i >= 0) waiting.splice(i, 1)[0].resolve(message);
    else seen.push(message);
  });
  child.next = (event, ms = LIMIT) => {
    const i = seen.findIndex((m) => m.event === event);
    if (i >= 0) return Promise.resolve(seen.splice(i, 1)[0]);
    return within(ms, new Promise((resolve) => waiting.push({ event, resolve })), `peer's '${event}'`);
  };
  return child;
}

/** A TCP port with nobody listening on it (just released by the kernel). */
async function freePort() {
  const s = net.createServer().listen(0, HOST);
  await within(LIMIT, once(s, 'listening'), 'listening');
  const { port } = s.address();
  await within(LIMIT, new Promise((resolve) => s.close(resolve)), 'close');
  return port;
}

/** The error a socket emits (fails if it connects and closes without one). */
const errorOf = (socket, what) => within(LIMIT, new Promise((resolve, reject) => {
  socket.once('error', resolve);
  socket.once('close', () => setImmediate(() => reject(new Error(`${what}: closed without an error`))));
}), what);

const { entryFileName } = await import('../../dist/switch/registry-entry.js');
const { ownNamespaces } = await import('../../dist/switch/namespace.js');
const entryFile = (port) => path.join(XWAY_DIR, entryFileName(port, ownNamespaces().netns));
const exists = (p) => { try { fs.lstatSync(p); return true; } catch { return false; } };


// ---- 7. the server ----------------------------------------------------------------------------

test('server.close() withdraws the ring endpoint: auto then gets TCP\'s ECONNREFUSED, force ERR_XWAY_NO_RING; open rings keep working', async () => {
  // The server's own semantics of close() (its 'close' waits for the last connection, whichever
  // side ends it) are in test/semantics/, over every transport; here what is the ring's alone.
  const sc = scope();
  try {
    const { server, client, peer } = await pair(sc, MODES[0]);
    const { port } = server.address();
    server.close();
    assert.is(server.listening, false);
    assert.is(lookupEndpoint(port), null, 'the registry entry went with close()');
    const auto = xway.connect({ port, host: HOST });
    assert.is(auto.transport, 'tcp');
    assert.is((await errorOf(auto, 'auto after close')).code, 'ECONNREFUSED');
    assert.is((await errorOf(xway.connect({ port, host: HOST, transport: 'force' }), 'force after close')).code, 'ERR_XWAY_NO_RING');
    peer.write('still');
    const [d] = await within(LIMIT, once(client, 'data'), 'data after close()');
    assert.is(d.toString(), 'still');
  } finally {
    await sc.close();
  }
});

test('server.getConnections counts ring and TCP connections together', async () => {
  const sc = scope();
  try {
    const server = await listen(sc);
    const count = () => new Promise((resolve, reject) => server.getConnections((err, n) => (err ? reject(err) : resolve(n))));
    assert.is(await count(), 0, 'before any connection');
    const ring = await connectTo(sc, MODES[0], server);
    const tcp = await connectTo(sc, MODES[1], server);
    const tcp2 = await connectTo(sc, MODES[1], server);
    assert.is(await count(), 3, 'one ring and two TCP connections');
    for (const { client, peer } of [ring, tcp2]) {
      const gone = new Promise((resolve) => peer.once('close', resolve));
      client.destroy();
      await within(LIMIT, gone, 'server side closed');
    }
    assert.is(await count(), 1, 'after two closed');
    assert.is(tcp.peer.readyState, 'open');
  } finally {
    await sc.close();
  }
});

// ---- 8. no listener ---------------------------------------------------------------------------

test('no listener: ECONNREFUSED with auto and off, ERR_XWAY_NO_RING with force', async () => {
  const port = await freePort();
  for (const transport of ['auto', 'off', undefined]) {
    const socket = xway.connect({ port, host: HOST, transport });
    assert.is(socket.transport, 'tcp');
    const err = await errorOf(socket, `${transport}`);
    assert.is(err.code, 'ECONNREFUSED', `${transport}: ${err.message}`);
    assert.is(err.syscall, 'connect');
  }
  const forced = xway.connect({ port, host: HOST, transport: 'force' });
  const err = await errorOf(forced, 'force');
  assert.is(err.code, 'ERR_XWAY_NO_RING');
  assert.match(err.message, String(port));
  // The other overloads of net.connect choose the same way.
  assert.is((await errorOf(xway.connect(port, HOST), 'connect(port, host)')).code, 'ECONNREFUSED');
  assert.is((await errorOf(xway.createConnection({ port, host: HOST }), 'createConnection')).code, 'ECONNREFUSED');
});

// ---- 9. the switch ----------------------------------------------------------------------------

test('a stale registry entry (its server was SIGKILLed): auto does not hang, gets ECONNREFUSED, the entry goes', async () => {
  const sc = scope();
  try {
    const child = startPeer(sc, ['echo']);
    const { port } = await child.next('listening');
    assert.ok(exists(entryFile(port)), 'the child registered its port');
    child.kill('SIGKILL');
    await within(LIMIT, child.exited, 'child exited');
    assert.ok(exists(entryFile(port)), 'SIGKILL left the entry behind');
    const t0 = Date.now();
    const socket = xway.connect({ port, host: HOST, transport: 'auto' });
    const err = await errorOf(socket, 'connect to a dead server');
    assert.is(err.code, 'ECONNREFUSED');
    assert.is(socket.transport, 'tcp');
    assert.ok(Date.now() - t0 < 1000);
    assert.not.ok(exists(entryFile(port)), 'the stale entry was removed');
    // With force: no live endpoint, no ring.
    assert.is((await errorOf(xway.connect({ port, host: HOST, transport: 'force' }), 'force')).code, 'ERR_XWAY_NO_RING');
  } finally {
    await sc.close();
  }
});

test('ring set-up failure falls back to TCP (data flows); with force it is an error', async () => {
  const sc = scope();
  const tcpServer = net.createServer({ allowHalfOpen: true }, (s) => { sc.socket(s); s.pipe(s); });
  sc.server(tcpServer);
  tcpServer.listen(0, HOST);
  await within(LIMIT, once(tcpServer, 'listening'), 'listening');
  const { port } = tcpServer.address();
  // An entry of this (live) process whose control socket is the wrong kind of socket (a stream
  // socket, where xway speaks SOCK_SEQPACKET): set-up fails at connect.
  const controlPath = path.join(fs.realpathSync(XWAY_DIR), 'ctl-nobody.sock');
  const wrong = net.createServer().listen(controlPath);
  await within(LIMIT, once(wrong, 'listening'), 'listening');
  sc.server(wrong);
  const registration = registerEndpoint({ port, host: HOST, controlPath });
  sc.defer(() => registration.close());
  try {
    assert.ok(lookupEndpoint(port), 'the entry is live');
    const socket = sc.socket(xway.connect({ port, host: HOST, transport: 'auto' }));
    await within(LIMIT, once(socket, 'connect'), 'connect');
    assert.is(socket.transport, 'tcp', 'fell back to TCP');
    assert.is(socket.remotePort, port);
    assert.is(socket.remoteAddress, HOST);
    assert.is(typeof socket.address().port, 'number');
    const data = random(512 * KiB, 5);
    const got = collect(socket);
    await within(LIMIT, writeAll(socket, data, 9), 'writes');
    const echoed = await within(LIMIT, got, 'echo');
    assert.ok(echoed.equals(data));
    assert.is(socket.bytesWritten, data.length);
    assert.is(socket.bytesRead, data.length);

    const forced = xway.connect({ port, host: HOST, transport: 'force' });
    const err = await errorOf(forced, 'force with a broken endpoint');
    assert.is(err.code, 'ERR_XWAY_NO_RING', `force: ${err.message}`);
    assert.is(forced.transport, 'ring', 'force never took TCP');
  } finally {
    await sc.close();
  }
});

// ---- 10. XWAY=off and what is local -----------------------------------------------------------

test('XWAY=off in a process makes everything TCP; XWAY=auto takes the ring', async () => {
  const sc = scope();
  try {
    const off = startPeer(sc, ['self'], { XWAY: 'off' });
    const report = await off.next('report');
    assert.equal(report, { event: 'report', xway: 'off', registered: false, client: 'tcp', server: 'via tcp' });
    assert.equal(await within(LIMIT, off.exited, 'exit'), { code: 0, signal: null });
    const auto = startPeer(sc, ['self'], { XWAY: 'auto' });
    const report2 = await auto.next('report');
    assert.equal(report2, { event: 'report', xway: 'auto', registered: true, client: 'ring', server: 'via ring' });
    assert.equal(await within(LIMIT, auto.exited, 'exit'), { code: 0, signal: null });
  } finally {
    await sc.close();
  }
});

test('the switch only calls this machine local', () => {
  for (const host of ['localhost', '127.0.0.1', '127.1.2.3', '::1', os.hostname()]) assert.ok(isLocalHost(host), host);
  for (const a of Object.values(os.networkInterfaces()).flat()) assert.ok(isLocalHost(a.address), a.address);
  // TEST-NET addresses (RFC 5737, 3849): never this machine. Only the decision is checked.
  for (const host of ['192.0.2.1', '198.51.100.7', '203.0.113.9', '2001:db8::1', 'example.invalid']) assert.not.ok(isLocalHost(host), host);
});

test('server.listen({ port: 0, signal }) aborted closes the server and withdraws its entry', async () => {
  const sc = scope();
  try {
    const server = sc.server(xway.createServer());
    const ac = new AbortController();
    server.listen({ port: 0, host: HOST, signal: ac.signal });
    await within(LIMIT, once(server, 'listening'), 'listening');
    const { port } = server.address();
    assert.ok(lookupEndpoint(port), 'registered');
    const closed = once(server, 'close');
    ac.abort();
    await within(LIMIT, closed, 'close');
    assert.is(server.listening, false);
    assert.is(lookupEndpoint(port), null, 'entry withdrawn');
    assert.is((await errorOf(xway.connect({ port, host: HOST }), 'connect after abort')).code, 'ECONNREFUSED');
  } finally {
    await sc.close();
  }
});

test.after(() => {
  fs.rmSync(XWAY_DIR, { recursive: true, force: true });
  // Other test files may share this process (uvu's runner): give them back their environment.
  for (const [name, value] of Object.entries(saved)) {
    if (value === undefined) delete process.env[name];
    else process.env[name] = value;
  }
});

test('the switch does not reach a server through the ring that TCP could not reach', async () => {
  // What a listener bound to the first address accepts, as Linux decides it (names are resolved
  // before this question is asked).
  const { servesHost } = await import('../../dist/socket/identity.js');
  assert.ok(servesHost('0.0.0.0', '127.0.0.1'));
  assert.ok(servesHost('0.0.0.0', '0.0.0.0'), 'connecting to 0.0.0.0 reaches 127.0.0.1');
  assert.ok(servesHost('::', '::1') && servesHost('::', '127.0.0.1'), 'a dual-stack listener takes both families');
  assert.ok(servesHost('::ffff:127.0.0.1', '127.0.0.1'));
  assert.not.ok(servesHost('0.0.0.0', '::1'), 'an IPv4 wildcard listener takes no IPv6 connection');
  assert.not.ok(servesHost('::1', '127.0.0.1'), 'an IPv6 loopback server is not reachable at 127.0.0.1');
  assert.not.ok(servesHost('127.0.0.1', '127.0.0.5'), 'one loopback address is not another');
  assert.not.ok(servesHost('127.0.0.1', '192.0.2.7'), 'a loopback-bound server is not reachable at another address');
  assert.not.ok(servesHost('192.0.2.7', '127.0.0.1'));
});

test.run();
