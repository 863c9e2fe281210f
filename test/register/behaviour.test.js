// What the preload must not change: XWAY=off patches nothing; a program that does nothing, or that
// listened and closed, exits by itself (no handle left behind); transportOf() tells ring from TCP.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { bounded, start, tempRegistry } from './harness.js';

async function run(file, options) {
  const child = start(file, options);
  const { code } = await bounded(child.exited, 20_000, `${file} did not exit by itself`).catch((err) => {
    child.kill('SIGKILL'); // its own children go when their IPC channel does
    throw err;
  });
  assert.is(code, 0, child.err);
  return child;
}

test('XWAY=off: nothing is patched and nothing is logged', async () => {
  const reg = tempRegistry();
  try {
    const off = await run('probe.mjs', { preload: 'import', env: { XWAY: 'off', XWAY_DIR: reg.dir }, args: ['--pair'] });
    assert.is(off.out, 'net patched false, tls.connect patched false\nserver side: tcp\nclient side: tcp, plain object: null\n');
    assert.is(off.err, '');
    const on = await run('probe.mjs', { preload: 'import', env: { XWAY_DIR: reg.dir }, args: ['--pair'] });
    assert.is(on.out, 'net patched true, tls.connect patched true\nserver side: ring\nclient side: ring, plain object: null\n');
    const none = await run('probe.mjs', { preload: 'none', env: { XWAY_DIR: reg.dir } });
    assert.is(none.out, 'net patched false, tls.connect patched false\n');
  } finally {
    reg.remove();
  }
});

test('no open handles: an idle program, and one that listened, connected and closed, exit by themselves', async () => {
  const reg = tempRegistry();
  try {
    for (const preload of ['import', 'require', 'node-options']) {
      const idle = await run('probe.mjs', { preload, env: { XWAY_DIR: reg.dir } });
      assert.is(idle.err, '');
      await run('probe.mjs', { preload, env: { XWAY_DIR: reg.dir }, args: ['--pair'] });
    }
  } finally {
    reg.remove();
  }
});

test('a connect aborted before it began, whose server closes meanwhile: one AbortError, as over TCP', async () => {
  const reg = tempRegistry();
  try {
    const plain = await run('aborted-connect.cjs', { env: { XWAY_DIR: reg.dir } });
    assert.ok(plain.out.startsWith('error AbortError\n'), plain.out);
    const preloaded = await run('aborted-connect.cjs', { preload: 'require', env: { XWAY_DIR: reg.dir } });
    assert.is(preloaded.out, plain.out);
  } finally {
    reg.remove();
  }
});

test('a process whose only connection stopped reading into a full buffer exits by itself, as over TCP', async () => {
  const reg = tempRegistry();
  try {
    const plain = await run('full-buffer.mjs', { env: { XWAY_DIR: reg.dir } });
    assert.ok(plain.out.includes('server exited by itself: 0'), plain.out);
    const preloaded = await run('full-buffer.mjs', { preload: 'import', env: { XWAY_DIR: reg.dir } });
    assert.is([...preloaded.out.split('\n')].sort().join('\n'), [...plain.out.split('\n')].sort().join('\n'));
    assert.ok(preloaded.err.includes('-> ring'), `the connection rode a ring:\n${preloaded.err}`);
  } finally {
    reg.remove();
  }
});

test('http2: a client session connects when its ring does; both ends see addresses, ports and the server as over TCP', async () => {
  const reg = tempRegistry();
  try {
    const plain = await run('http2-connect.cjs', { env: { XWAY_DIR: reg.dir } });
    assert.ok(plain.out.includes('client got ok'), plain.out);
    const preloaded = await run('http2-connect.cjs', { preload: 'require', env: { XWAY_DIR: reg.dir } });
    assert.is(preloaded.out, plain.out);
    assert.ok(preloaded.err.includes('-> ring'), `the session rode a ring:\n${preloaded.err}`);
  } finally {
    reg.remove();
  }
});

test('a socket connected again after it closed rides a ring each time, as it would TCP', async () => {
  const reg = tempRegistry();
  try {
    const plain = await run('reconnect.cjs', { env: { XWAY_DIR: reg.dir } });
    assert.ok(plain.out.includes('rounds 3, ports agree true, distinct 3'), plain.out);
    const preloaded = await run('reconnect.cjs', { preload: 'require', env: { XWAY_DIR: reg.dir, XWAY_DEBUG: '1' } });
    assert.is(preloaded.out, plain.out);
    assert.is(preloaded.err.split('\n').filter((l) => /connect .* -> ring/.test(l)).length, 3, preloaded.err);
  } finally {
    reg.remove();
  }
});

test("a reset that comes while the client's end() is on its way: read after 'finish', or never after destroySoon(), as over TCP", async () => {
  const reg = tempRegistry();
  try {
    const plain = await run('shutdown-reset.mjs', { env: { XWAY_DIR: reg.dir } });
    assert.is(plain.out, 'end: finish, error ECONNRESET, close true\ndestroySoon: finish, close false\n', 'TCP on this machine');
    const preloaded = await run('shutdown-reset.mjs', { preload: 'import', env: { XWAY_DIR: reg.dir, XWAY_DEBUG: '1' } });
    assert.is(preloaded.out, plain.out);
    assert.ok(preloaded.err.includes('-> ring'), preloaded.err);
  } finally {
    reg.remove();
  }
});

test('an http2 client session and its server unref()ed: the process exits with the connection open, as over TCP', async () => {
  const reg = tempRegistry();
  try {
    const plain = await run('unref-session.cjs', { env: { XWAY_DIR: reg.dir } });
    assert.is(plain.out, 'connected\nexited by itself\n');
    const preloaded = await run('unref-session.cjs', { preload: 'require', env: { XWAY_DIR: reg.dir, XWAY_DEBUG: '1' } });
    assert.is(preloaded.out, plain.out);
    assert.ok(preloaded.err.includes('-> ring'), preloaded.err);
  } finally {
    reg.remove();
  }
});

test('TLS: a plaintext client at a TLS server (tlsClientError, the server closes once the connection is gone); an aborted tls.connect; tls.connect({ socket }) to a server that closes', async () => {
  const reg = tempRegistry();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xreg-tls-'));
  try {
    const key = path.join(dir, 'key.pem'), cert = path.join(dir, 'cert.pem');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
      '-days', '1', '-subj', '/CN=localhost', '-keyout', key, '-out', cert], { stdio: 'ignore' });
    const env = { XWAY_DIR: reg.dir, TLS_KEY: key, TLS_CERT: cert };
    const plain = await run('tls-plaintext.cjs', { env });
    assert.ok(plain.out.includes('server closed'), plain.out);
    const preloaded = await run('tls-plaintext.cjs', { preload: 'require', env: { ...env, XWAY_DEBUG: '1' } });
    assert.is(preloaded.out, plain.out);
    assert.ok(preloaded.err.includes('-> ring'), preloaded.err);
    const plainAbort = await run('tls-aborted.cjs', { env });
    assert.ok(plainAbort.out.startsWith('error AbortError\n'), plainAbort.out);
    const preloadedAbort = await run('tls-aborted.cjs', { preload: 'require', env });
    assert.is(preloadedAbort.out, plainAbort.out, 'an aborted tls.connect: the ring below goes with it');
    // tls.connect({ socket }) over a socket the program connected: the server writes, then
    // destroys; the TLSSocket ends and closes with no 'error' (no EPIPE from its close_notify).
    const plainOver = await run('tls-over-socket.cjs', { env });
    assert.is(plainOver.out, 'allowHalfOpen false\ndata hello\nend\nraw close, destroyed true\nclose false\n');
    const preloadedOver = await run('tls-over-socket.cjs', { preload: 'require', env: { ...env, XWAY_DEBUG: '1' } });
    assert.is(preloadedOver.out, plainOver.out, 'tls.connect({ socket }) over a ring socket: the TLSSocket decides when it ends');
    assert.ok(preloadedOver.err.includes('-> ring'), preloadedOver.err);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
    reg.remove();
  }
});

test.run();
