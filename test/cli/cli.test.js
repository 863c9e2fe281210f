// The xway command: help and usage errors (exit code 2, the message names the flag), a short real
// `xway bench` run, and `xway stat` against a real server process and a real ring connection.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { testIf } from '../helpers.js';
import { spawn, execFile } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';

// A registry of our own, in force (and handed to every child process) only while this file's
// tests run: uvu loads every test file into one process, and others set XWAY_DIR at load time.
const XWAY_DIR = fs.mkdtempSync(path.join(os.tmpdir(), 'xc-'));
let saved;
const { default: xway, hostUnavailableReason, snapshotHost } = await import('../../dist/index.js');

const BIN = new URL('../../bin/xway.js', import.meta.url).pathname;
const SERVER = new URL('./fixtures/echo-server.mjs', import.meta.url).pathname;
const hostWhy = hostUnavailableReason();

/** Runs the xway command; resolves { code, stdout, stderr }. */
function xwayCli(args, timeout = 30_000) {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { timeout, env: process.env }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr });
    });
  });
}

test.before.each(() => {
  saved = { XWAY_DIR: process.env.XWAY_DIR, XWAY: process.env.XWAY };
  process.env.XWAY_DIR = XWAY_DIR;
  delete process.env.XWAY; // the command's own options decide, not the caller's environment
});

test.after.each(() => {
  for (const [k, v] of Object.entries(saved)) if (v === undefined) delete process.env[k]; else process.env[k] = v;
});

test.after(() => fs.rmSync(XWAY_DIR, { recursive: true, force: true }));

test('xway --help lists the commands; each command has help with examples; --version', async () => {
  const top = await xwayCli(['--help']);
  assert.is(top.code, 0);
  for (const c of ['bench', 'stat', 'visualize']) assert.match(top.stdout, c);
  for (const c of ['bench', 'stat']) {
    const r = await xwayCli([c, '--help']);
    assert.is(r.code, 0, r.stderr);
    assert.match(r.stdout, `Usage: xway ${c}`);
    assert.match(r.stdout, 'Examples:');
  }
  const v = await xwayCli(['--version']);
  assert.match(v.stdout, /^xway \d+\.\d+\.\d+/);
});

test('bad flags and commands: exit code 2 and a message naming the flag', async () => {
  const cases = [
    [['bench', '--nope'], '--nope'],
    [['bench', '--size', '12q'], '--size'],
    [['bench', '--transport', 'ring,carrier-pigeon'], '--transport'],
    [['bench', '--test', 'stream,ping'], '--test'],
    [['bench', '--reps', '0'], '--reps'],
    [['bench', '--duration'], '--duration'],
    [['bench', '--json=yes'], '--json'],
    [['bench', '--ring', '3000'], '--ring'],
    [['bench', '--connections', '0'], '--connections'],
    [['bench', '--parallel', 'many'], '--parallel'],
    [['bench', '--test', 'conns', '--threads'], '--threads'],
    [['bench', '--peer', '9100'], '--peer'],
    [['bench', '--peer', 'h:9100', '--threads'], '--peer'],
    [['bench', '--peer', 'h:9100', '--transport', 'unix'], '--peer'],
    [['bench', '--peer-listen', 'x:y'], '--peer-listen'],
    [['stat', '--bogus'], '--bogus'],
    [['stat', '--watch', '10'], '--watch'],
    [['--frobnicate'], '--frobnicate'],
    [['frobnicate'], 'frobnicate'],
  ];
  for (const [args, flag] of cases) {
    const r = await xwayCli(args);
    assert.is(r.code, 2, `${args.join(' ')}: exit ${r.code}, stderr ${r.stderr}`);
    assert.ok(r.stderr.includes(flag), `${args.join(' ')}: '${r.stderr.trim()}' does not name ${flag}`);
    assert.not.match(r.stderr, /\n\s+at /, 'a usage error prints no stack');
  }
});

test('xway bench --json: a short real run over ring and TCP, the ring results carried by the ring', async () => {
  const transports = hostWhy ? 'tcp,unix' : 'ring,tcp';
  const r = await xwayCli(['bench', '--duration', '0.2', '--warmup', '0.05', '--reps', '1', '--json', '--quiet',
    '--test', 'stream,rr,crr', '--size', '1k', '--transport', transports], 60_000);
  assert.is(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  assert.type(out.seconds, 'number');
  assert.is(out.options.reps, 1);
  assert.type(out.machine.cpus, 'number');
  assert.equal(out.failures, []);
  assert.is(out.results.length, 3 * 2);
  for (const res of out.results) {
    assert.ok(['stream', 'rr', 'crr'].includes(res.test));
    assert.is(res.value.n, 1, `${res.test} ${res.transport}`);
    assert.ok(res.value.median > 0, `${res.test} ${res.transport}: ${res.value.median}`);
    assert.ok(res.cpu.median > 0, `${res.test} ${res.transport} cpu: ${res.cpu.median}`);
    assert.ok(['GB/s', 'µs', 'conn/s'].includes(res.unit));
    assert.equal(res.carriedBy, [res.transport === 'ring' ? 'ring' : res.transport]);
    if (res.transport !== 'tcp') assert.type(res.ratioToTcp, 'number');
  }
  if (hostWhy) console.log(`  (ring transport not run: ${hostWhy})`);
});

test('xway bench --peer: the server end is a peer that `xway bench --peer-listen` serves elsewhere', async () => {
  const listener = spawn(process.execPath, [BIN, 'bench', '--peer-listen', '127.0.0.1:0'], { env: process.env, stdio: ['ignore', 'ignore', 'pipe'] });
  try {
    const line = await new Promise((resolve, reject) => {
      const rl = createInterface({ input: listener.stderr });
      rl.on('line', (l) => { if (/serving bench peers on/.test(l)) resolve(l); });
      listener.once('exit', (code) => reject(new Error(`--peer-listen exited ${code}`)));
    });
    const port = Number(/:(\d+)$/.exec(line)[1]);
    const transports = hostWhy ? 'tcp' : 'ring,tcp';
    const r = await xwayCli(['bench', '--peer', `127.0.0.1:${port}`, '--duration', '0.2', '--warmup', '0.05', '--reps', '1', '--json', '--quiet',
      '--test', 'stream,rr', '--size', '1k', '--transport', transports], 60_000);
    assert.is(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.equal(out.failures, []);
    assert.equal(out.options.peer, { host: '127.0.0.1', port });
    for (const res of out.results) {
      assert.is(res.value.n, 1, `${res.test} ${res.transport}`);
      assert.equal(res.carriedBy, [res.transport]);
    }
  } finally {
    listener.kill('SIGKILL');
  }
});

testIf(test, !hostWhy, `no host platform: ${hostWhy}`)('xway stat lists a live ring connection with its real bytes', async () => {
  const server = spawn(process.execPath, [SERVER], { stdio: ['pipe', 'pipe', 'inherit'] });
  let socket;
  try {
    const [line] = await once(createInterface({ input: server.stdout }), 'line');
    const port = Number(line);
    socket = xway.connect({ port, host: '127.0.0.1', transport: 'force' });
    await once(socket, 'connect');
    assert.is(socket.transport, 'ring');
    const sent = Buffer.alloc(100_000, 7);
    let echoed = 0;
    const back = new Promise((resolve) => socket.on('data', (d) => { echoed += d.length; if (echoed === sent.length) resolve(); }));
    socket.write(sent);
    await back;
    // Servers publish their channel tables a moment after a change: wait until it is there.
    const deadline = Date.now() + 5000;
    while (!snapshotHost().connections.some((x) => x.port === port) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));

    const r = await xwayCli(['stat', '--json']);
    assert.is(r.code, 0, r.stderr);
    const snap = JSON.parse(r.stdout);
    assert.ok(snap.endpoints.some((e) => e.port === port && e.pid === server.pid), 'endpoint listed');
    const c = snap.connections.find((x) => x.port === port);
    assert.ok(c, `connection on port ${port} listed: ${r.stdout}`);
    assert.is(c.serverPid, server.pid);
    assert.is(c.clientPid, process.pid);
    assert.is(c.state, 'open');
    assert.is(Number(c.clientToServer.bytesIn), sent.length);
    assert.is(Number(c.serverToClient.bytesIn), sent.length);

    const t = await xwayCli(['stat']);
    assert.is(t.code, 0, t.stderr);
    const row = t.stdout.split('\n').find((l) => l.includes(c.id));
    assert.ok(row, t.stdout);
    assert.match(row, String(port));
    assert.match(row, '97.7 KiB');
    assert.match(row, 'open');
  } finally {
    socket?.destroy();
    server.stdin.end();
    await once(server, 'exit');
  }
});

test.run();
