// Connections that do not wait for the server's answer (docs/links.md, "Connecting at once"): a
// ring client with a port granted by the listener emits 'connect' without waking the server, as a
// TCP connect completes in the kernel from the listening socket's queue. Each scenario runs over
// TCP loopback and over a ring and must show the same events: connecting to a stopped server,
// the listener closing before it accepted, the server dying before it accepted, and a connect
// after it died. The ring's second connection must also have connected at once (so the scenario
// tests that path), with one port at both ends.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { useTempRegistry } from './helpers.js';
import xway from '../../dist/index.js';

const test = suite('connecting at once');
const registry = useTempRegistry(test, 'xlink-early-');
const SERVER = new URL('./fixtures/early-server.mjs', import.meta.url).pathname;

/** The server process: its events, in order, and a way to wait for the next of a kind. */
async function startServer(mode) {
  const child = spawn(process.execPath, [SERVER, mode], { stdio: ['pipe', 'pipe', 'inherit'], env: { ...process.env, XWAY_DIR: registry } });
  const events = [];
  const waiters = [];
  createInterface({ input: child.stdout }).on('line', (line) => {
    const m = JSON.parse(line);
    events.push(m);
    for (const w of waiters.splice(0)) w();
  });
  child.exited = new Promise((resolve) => child.once('exit', resolve));
  child.events = events;
  child.next = async (event, from = 0) => {
    for (;;) {
      const found = events.slice(from).find((e) => e.event === event);
      if (found) return found;
      await new Promise((resolve) => waiters.push(resolve));
    }
  };
  child.port = (await child.next('listening')).port;
  return child;
}

/** A client socket's events, as the semantics suite records them. */
function record(socket) {
  const seen = [];
  socket.on('connect', () => seen.push('connect'));
  socket.on('data', (d) => seen.push(`data:${d}`));
  socket.on('end', () => seen.push('end'));
  socket.on('error', (e) => seen.push(`error:${e.code}:${e.syscall}`));
  const closed = new Promise((resolve) => socket.on('close', (hadError) => { seen.push(`close:${hadError}`); resolve(); }));
  return { seen, closed };
}

const connectTo = (mode, port, transport = 'force') => (mode === 'tcp'
  ? net.connect({ port, host: '127.0.0.1' })
  : xway.connect({ port, host: '127.0.0.1', transport }));

/** One connection that echoes and closes: the link is up, and the listener has granted ports. */
async function warm(mode, server) {
  const s = connectTo(mode, server.port);
  const { seen, closed } = record(s);
  s.on('connect', () => s.end('hi'));
  await closed;
  assert.equal(seen, ['connect', 'data:hi', 'end', 'close:false'], `${mode}: warm-up`);
}

/** Whether the ring socket connected without the server's ACCEPT (its channel end says so). */
function early(socket) {
  const state = Object.getOwnPropertySymbols(socket).map((k) => socket[k]).find((v) => v && typeof v === 'object' && 'settingUp' in v);
  return state?.end?.early === true;
}

/** A file the blocked server waits for, in the suite's directory (removed with it). */
let flags = 0;
const flag = () => path.join(registry, `go-${++flags}`);

for (const mode of ['tcp', 'ring']) {
  test(`${mode}: a connect to a stopped server completes, and the exchange follows once it runs`, async () => {
    const server = await startServer(mode);
    try {
      await warm(mode, server);
      server.kill('SIGSTOP');
      const s = connectTo(mode, server.port);
      const { seen, closed } = record(s);
      await new Promise((resolve) => s.once('connect', resolve));
      if (mode === 'ring') assert.ok(early(s), 'connected at once');
      const localPort = s.localPort;
      assert.ok(localPort > 0, 'its ephemeral port is known at connect');
      server.kill('SIGCONT');
      s.end('ping');
      await closed;
      assert.equal(seen, ['connect', 'data:ping', 'end', 'close:false']);
      const conns = server.events.filter((e) => e.event === 'connection');
      assert.is(conns.at(-1).remotePort, localPort, 'the server sees the client\'s port');
    } finally {
      server.kill('SIGCONT');
      server.kill();
    }
  });

  test(`${mode}: the listener closes before it accepted a connection: connect, then ECONNRESET`, async () => {
    const server = await startServer(mode);
    try {
      await warm(mode, server);
      const file = flag();
      const from = server.events.length;
      server.stdin.write(`block ${file}\n`);
      await server.next('blocked', from);
      const s = connectTo(mode, server.port);
      const { seen, closed } = record(s);
      await new Promise((resolve) => s.once('connect', resolve));
      if (mode === 'ring') assert.ok(early(s), 'connected at once');
      s.write('lost');
      fs.writeFileSync(file, 'close');
      await closed;
      assert.equal(seen, ['connect', 'error:ECONNRESET:read', 'close:true']);
    } finally {
      server.kill();
    }
  });

  test(`${mode}: the server dies before it accepted: connect, then ECONNRESET; a connect after: ECONNREFUSED`, async () => {
    const server = await startServer(mode);
    await warm(mode, server);
    server.kill('SIGSTOP');
    const s = connectTo(mode, server.port);
    const { seen, closed } = record(s);
    await new Promise((resolve) => s.once('connect', resolve));
    if (mode === 'ring') assert.ok(early(s), 'connected at once');
    server.kill('SIGKILL');
    await server.exited;
    // The process is gone (reaped): a connect now finds no listener, whatever the client's link
    // has or has not noticed yet.
    const late = connectTo(mode, server.port, 'auto');
    const lateSeen = record(late);
    await Promise.all([closed, lateSeen.closed]);
    assert.equal(seen, ['connect', 'error:ECONNRESET:read', 'close:true']);
    assert.equal(lateSeen.seen, ['error:ECONNREFUSED:connect', 'close:true']);
  });
}

test('ring: connections at once have ports unique among the listener\'s, equal at both ends', async () => {
  const server = await startServer('ring');
  try {
    await warm('ring', server);
    const from = server.events.length;
    const sockets = Array.from({ length: 200 }, () => connectTo('ring', server.port));
    const ports = await Promise.all(sockets.map((s) => new Promise((resolve, reject) => {
      s.once('error', reject);
      s.once('connect', () => resolve({ port: s.localPort, early: early(s) }));
    })));
    assert.ok(ports.some((p) => p.early), 'some connected at once');
    assert.is(new Set(ports.map((p) => p.port)).size, ports.length, 'no port twice');
    for (const s of sockets) s.end();
    await Promise.all(sockets.map((s) => new Promise((resolve) => s.once('close', resolve))));
    const accepted = () => server.events.slice(from).filter((e) => e.event === 'connection').length;
    while (accepted() < 200) await server.next('connection', server.events.length);
    const seen = new Set(server.events.slice(from).filter((e) => e.event === 'connection').map((e) => e.remotePort));
    assert.equal([...seen].sort(), ports.map((p) => p.port).sort(), 'the server saw the same ports');
  } finally {
    server.kill();
  }
});

test.run();
