// The compatibility matrix, web and stream rows: each test runs an unmodified server program and
// an unmodified client program as separate processes, first as they are, then with the
// xway/register preload; the outputs must be identical, and the preload's XWAY_DEBUG lines must
// show that every connection to the server rode a ring and that the rings carried the traffic.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { compare } from './harness.js';

function assertRings(report, { connects = 1, bytes = 0 } = {}) {
  assert.equal(report.tcpConnects, [], 'no connection to the server fell back to TCP');
  assert.ok(report.ringConnects >= connects, `at least ${connects} ring connects, saw ${report.ringConnects}:\n${report.lines.join('\n')}`);
  assert.is(report.accepts, report.ringConnects, 'the server accepted each ring connection');
  assert.ok(report.bytes >= bytes, `rings carried ${report.bytes} bytes, expected at least ${bytes}`);
}

test('web: node:http with a keep-alive http.Agent, global fetch and an undici Pool with pipelining', async () => {
  const { plain, preloaded, report } = await compare({ server: 'http-server.mjs', client: 'http-client.mjs' });
  assert.ok(plain.client.includes('undici pool 200 you asked for /pool/0'), plain.client);
  assert.is(preloaded.client, plain.client);
  assertRings(report, { connects: 3, bytes: 4 << 20 });
});

test('web: an express app over fetch', async () => {
  const { plain, preloaded, report } = await compare({ server: 'express-server.mjs', client: 'express-client.mjs' });
  assert.ok(plain.client.includes('{"sum":10.5}'), plain.client);
  assert.is(preloaded.client, plain.client);
  assertRings(report);
});

test('web: https (CommonJS, --require) with a self-signed certificate: https.Agent and tls.connect', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xreg-tls-'));
  try {
    const key = path.join(dir, 'key.pem'), cert = path.join(dir, 'cert.pem');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
      '-days', '1', '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost', '-keyout', key, '-out', cert], { stdio: 'ignore' });
    const { plain, preloaded, report } = await compare({ server: 'https-server.cjs', client: 'https-client.cjs', preload: 'require', env: { TLS_KEY: key, TLS_CERT: cert } });
    assert.ok(plain.client.includes('tls.connect authorized true true true'), plain.client);
    assert.is(preloaded.client, plain.client);
    assertRings(report, { connects: 2, bytes: 2 << 20 });
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('file copy: 8 MiB each way at once through stream.pipeline, checksummed (NODE_OPTIONS preload)', async () => {
  const { plain, preloaded, report } = await compare({ server: 'bulk-server.mjs', client: 'bulk-client.mjs', preload: 'node-options' });
  assert.match(plain.client, /client received 8388608 bytes sha256 [0-9a-f]{64}/);
  assert.is(preloaded.client, plain.client);
  assert.is(preloaded.server, plain.server);
  assertRings(report, { bytes: 16 << 20 });
});

test('server speaks first: a banner before the client sends, on new net.Socket().connect()', async () => {
  const { plain, preloaded, report } = await compare({ server: 'banner-server.mjs', client: 'banner-client.mjs' });
  assert.ok(plain.client.includes('220 banner: service ready\n250 ok user anonymous'), plain.client);
  assert.is(preloaded.client, plain.client);
  assert.is(preloaded.server, plain.server);
  assertRings(report);
});

test('shutdown: half-close with allowHalfOpen, and resetAndDestroy() seen as ECONNRESET', async () => {
  const { plain, preloaded, report } = await compare({ server: 'halfclose-server.mjs', client: 'halfclose-client.mjs' });
  assert.ok(plain.client.includes('client got answer: you sent 10 chars: HALF CLOSE'), plain.client);
  assert.ok(plain.client.includes('client error ECONNRESET'), plain.client);
  assert.is(preloaded.client, plain.client);
  assert.is(preloaded.server, plain.server);
  assertRings(report, { connects: 2 });
});

test.run();
