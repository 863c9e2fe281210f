// EventChannel across real processes: ping-pong, batching, ref/unref,
// exceptions from the callback.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Conn, listen, native, sleep, spawnFixture, withTimeout } from './util.js';

const fixtures = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures');

function throwsCode(fn, code) {
  try {
    fn();
  } catch (err) {
    assert.is(err.code, code, `expected ${code}, got ${err.code}: ${err.message}`);
    return err;
  }
  assert.unreachable(`expected an error with code ${code}`);
}

test('ping-pong 1000 notifications and batched bursts with a child process', async () => {
  let onPing = () => {};
  const calls = []; // every callback's ports, for the burst check
  const ch = new native.EventChannel((ports) => {
    calls.push(ports);
    if (ports.includes(ping.port)) onPing();
  });
  const ping = ch.allocPort();
  const burst = [ch.allocPort(), ch.allocPort(), ch.allocPort()];
  assert.equal([ping.port, ...burst.map((p) => p.port)], [1, 2, 3, 4], 'ports start at 1');

  const srv = listen();
  const child = spawnFixture('evtchn-child.js', [srv.path]);
  const conn = new Conn(await srv.accept());
  try {
    const hello = await conn.next();
    assert.is(hello.fds.length, 4);
    ch.bind(ping.port, hello.fds[0]);
    burst.forEach((p, i) => ch.bind(p.port, hello.fds[i + 1]));
    conn.send({}, [ping.fd, ...burst.map((p) => p.fd)]);
    assert.ok((await conn.next()).msg.bound);

    // Ping-pong: each ping waits for its pong, so nothing can coalesce.
    const N = 1000;
    let pongs = 0;
    const t0 = performance.now();
    await withTimeout(
      new Promise((resolve) => {
        onPing = () => {
          if (++pongs < N) ch.notify(ping.port);
          else resolve();
        };
        ch.notify(ping.port);
      }),
      5000,
      'ping-pong',
    );
    const rtt = ((performance.now() - t0) / N) * 1000;
    assert.is(pongs, N);
    conn.send({ cmd: 'count' });
    assert.is((await conn.next()).msg.received, N, 'child received every ping');
    console.log(`    ping-pong: ${N} round trips, ${rtt.toFixed(1)} µs each`);

    // Burst while we are busy: 3 ports x 500 notifications collapse into
    // one callback naming each port once.
    calls.length = 0;
    conn.send({ cmd: 'burst', n: 500 });
    const until = performance.now() + 300;
    while (performance.now() < until); // keep the event loop busy
    const done = (await conn.next()).msg;
    assert.is(done.burstDone, 1500);
    await sleep(30);
    const burstPorts = burst.map((p) => p.port);
    const burstCalls = calls.filter((ps) => ps.some((p) => burstPorts.includes(p)));
    assert.ok(burstCalls.length >= 1, 'burst delivered');
    assert.ok(burstCalls.length < done.burstDone, `batched: ${burstCalls.length} callbacks for ${done.burstDone} notifies`);
    assert.equal([...burstCalls[0]].sort(), burstPorts, 'first callback carries all three ports, once each');
    console.log(`    burst: ${done.burstDone} notifications -> ${burstCalls.length} callback(s)`);

    // Errors for unknown / unbound ports and bad fds.
    throwsCode(() => ch.notify(9), 'EBADF');
    throwsCode(() => ch.notify(0), 'ERR_OUT_OF_RANGE');
    throwsCode(() => ch.notify('1'), 'ERR_INVALID_ARG_TYPE');
    const lone = ch.allocPort();
    assert.is(lone.port, 5);
    throwsCode(() => ch.notify(lone.port), 'EINVAL');
    throwsCode(() => ch.bind(lone.port, lone.fd), 'EINVAL'); // our own fd
    throwsCode(() => ch.bind(lone.port, 0), 'EINVAL'); // stdin is no eventfd
    throwsCode(() => ch.bind(lone.port, 987654), 'EBADF');
    ch.closePort(lone.port);
    throwsCode(() => ch.closePort(lone.port), 'EBADF');
    // Freed port numbers are reused.
    ch.closePort(burst[1].port);
    const again = ch.allocPort();
    assert.is(again.port, burst[1].port);
    ch.closePort(again.port);
  } finally {
    conn.close();
    srv.close();
    ch.close();
    ch.close(); // idempotent
  }
  throwsCode(() => ch.allocPort(), 'EBADF');
  throwsCode(() => ch.notify(1), 'EBADF');
  ch.ref(); // harmless after close
  const exit = await withTimeout(child.exited, 3000, 'child exit');
  assert.equal(exit, { code: 0, signal: null });
});

test('an unref()d channel lets its process exit; a ref()d one keeps it alive', async () => {
  const t0 = performance.now();
  const unrefd = spawnFixture('evtchn-lifetime.js', ['unref']);
  const reffed = spawnFixture('evtchn-lifetime.js', ['ref']);
  try {
    const exit = await withTimeout(unrefd.exited, 2000, 'unref child exit');
    assert.equal(exit, { code: 0, signal: null });
    console.log(`    unref'd child exited after ${(performance.now() - t0).toFixed(0)} ms`);
    const still = await Promise.race([reffed.exited, sleep(500).then(() => 'alive')]);
    assert.is(still, 'alive', 'a ref()d channel keeps the loop alive');
  } finally {
    reffed.kill('SIGKILL');
    unrefd.kill('SIGKILL');
  }
});

function runLifetime(args) {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [path.join(fixtures, 'evtchn-lifetime.js'), ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    child.on('close', (code, signal) => resolve({ code, signal, out, err }));
  });
}

test('an exception thrown by onEvents is an uncaught exception, not a crash', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xway-native-'));
  fs.mkdirSync(dir + '/b');
  try {
    const [handled, unhandled] = await withTimeout(
      Promise.all([runLifetime(['throw', 'handled', dir]), runLifetime(['throw', 'unhandled', dir + '/b'])]),
      5000,
      'throwing children',
    );
    assert.is(handled.signal, null);
    assert.is(handled.code, 0, handled.err);
    assert.match(handled.out, /caught: boom from ports 1/);
    // Without a handler: Node's usual fatal uncaught exception (exit code 1,
    // stack on stderr) - never a signal or abort.
    assert.is(unhandled.signal, null);
    assert.is(unhandled.code, 1);
    assert.match(unhandled.err, /Error: boom from ports 1/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('constructor validation', () => {
  throwsCode(() => new native.EventChannel(), 'ERR_INVALID_ARG_TYPE');
  throwsCode(() => new native.EventChannel(42), 'ERR_INVALID_ARG_TYPE');
  try {
    native.EventChannel(() => {});
    assert.unreachable('call without new');
  } catch (err) {
    assert.instance(err, TypeError);
  }
  // V8 checks the receiver of class methods itself.
  assert.throws(() => native.EventChannel.prototype.notify.call({}, 1), /Illegal invocation/);
});

test.run();
