// Real protocols over RingSockets (host platform: a real control socket and a shared memfd
// segment), with the protocol libraries used exactly as they are: tls, http2, ws, undici (Client,
// Agent and fetch). Each test checks the content end to end and that the bytes went through the
// ring (the channel counters grew by at least the payload), and cleans up everything it opened.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { once } from 'node:events';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import http from 'node:http';
import http2 from 'node:http2';
import tls from 'node:tls';
import { WebSocket, WebSocketServer } from 'ws';
import { Client, Agent, fetch } from 'undici';
import { RingSocket, listenHostChannels, connectHost } from '../../dist/index.js';
import { tempSocket, within } from '../host/helpers.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const LIMIT = 2000; // every test must be done well within this

// ---- helpers ----------------------------------------------------------------------------------

/** Two connected RingSockets (client, server) over a host channel in this process. */
async function hostPair(options = {}) {
  const sock = tempSocket();
  let accepted;
  const acceptedEnd = new Promise((resolve) => (accepted = resolve));
  const listener = listenHostChannels(sock.path, { capacity: 64 * KiB }, accepted);
  try {
    const clientEnd = await connectHost(sock.path, { capacity: 64 * KiB });
    const serverEnd = await acceptedEnd;
    return [RingSocket.over(clientEnd, options), RingSocket.over(serverEnd, options)];
  } finally {
    listener.close();
    sock.cleanup();
  }
}

/** A host listener that hands every accepted channel to `server` as a RingSocket 'connection',
 *  and a `connect()` that opens a new client RingSocket to it. */
function ringListener(server) {
  const sock = tempSocket();
  const accepted = [];
  const clients = [];
  const listener = listenHostChannels(sock.path, { capacity: 64 * KiB }, (end) => {
    const socket = RingSocket.over(end);
    accepted.push(socket);
    server.emit('connection', socket);
  });
  return {
    accepted,
    clients,
    connect: async () => {
      const socket = RingSocket.over(await connectHost(sock.path, { capacity: 64 * KiB }));
      clients.push(socket);
      return socket;
    },
    close: () => {
      listener.close();
      sock.cleanup();
      for (const s of [...accepted, ...clients]) s.destroy();
    },
  };
}

/** Deterministic pseudo-random bytes. */
const random = (n, seed) => {
  const b = Buffer.alloc(n);
  let x = seed | 1;
  for (let i = 0; i < n; i++) { x ^= x << 13; x ^= x >>> 17; x ^= x << 5; b[i] = x; }
  return b;
};

const sha = (b) => createHash('sha256').update(b).digest('hex');

/** Resolves with exactly `n` bytes read from `stream` (fails on error/close before that). */
const readExactly = (stream, n) => new Promise((resolve, reject) => {
  const parts = [];
  let got = 0;
  const onData = (d) => {
    parts.push(d);
    got += d.length;
    if (got >= n) {
      stream.off('data', onData).off('error', reject).off('close', onClose);
      resolve(Buffer.concat(parts));
    }
  };
  const onClose = () => reject(new Error(`closed after ${got} of ${n} bytes`));
  stream.on('data', onData).once('error', reject).once('close', onClose);
});

const readAll = (stream) => new Promise((resolve, reject) => {
  const parts = [];
  stream.on('data', (d) => parts.push(typeof d === 'string' ? Buffer.from(d) : d))
    .once('end', () => resolve(Buffer.concat(parts))).once('error', reject);
});

/** Asserts that at least `n` bytes went through each direction's ring named. */
function assertThroughRing(socket, { tx = 0, rx = 0 }, what) {
  const t = socket.channel.tx.stats(), r = socket.channel.rx.stats();
  assert.is(socket.transport, 'ring');
  assert.ok(t.bytesIn >= BigInt(tx) && t.bytesOut >= BigInt(tx), `${what}: tx ring carried ${t.bytesIn}/${t.bytesOut} < ${tx}`);
  assert.ok(r.bytesIn >= BigInt(rx) && r.bytesOut >= BigInt(rx), `${what}: rx ring carried ${r.bytesIn}/${r.bytesOut} < ${rx}`);
}

/** A throwaway self-signed certificate for CN=localhost: generated now with openssl. */
function selfSigned() {
  let openssl = '';
  try { openssl = execFileSync('which', ['openssl'], { encoding: 'utf8' }).trim(); } catch { /* missing */ }
  if (!openssl) {
    // Without openssl, the committed test-only fixture (if present) is used instead.
    const dir = new URL('./fixtures/', import.meta.url).pathname;
    return { key: fs.readFileSync(path.join(dir, 'localhost.key')), cert: fs.readFileSync(path.join(dir, 'localhost.crt')), source: 'fixture' };
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xway-tls-'));
  try {
    const key = path.join(dir, 'key.pem'), cert = path.join(dir, 'cert.pem');
    execFileSync(openssl, ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
      '-days', '1', '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost',
      '-keyout', key, '-out', cert], { stdio: 'ignore' });
    return { key: fs.readFileSync(key), cert: fs.readFileSync(cert), source: 'openssl' };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

// ---- tls ----------------------------------------------------------------------------------------

test('tls: tls.connect over a RingSocket to a tls.Server fed RingSockets, > 1 MiB both ways, verified', async () => {
  const { key, cert } = selfSigned();
  const [clientRing, serverRing] = await hostPair();
  const up = random(1.5 * MiB + 3, 11), down = random(1.25 * MiB + 7, 12);

  const server = tls.createServer({ key, cert });
  const serverGot = new Promise((resolve, reject) => {
    server.once('secureConnection', (s) => {
      s.once('error', reject);
      s.write(down); // both directions at once
      readExactly(s, up.length).then((b) => resolve({ b, s }), reject);
    });
    server.once('tlsClientError', reject);
  });
  server.emit('connection', serverRing);

  const client = tls.connect({ socket: clientRing, servername: 'localhost', ca: cert });
  const clientError = new Promise((_, reject) => client.once('error', reject));
  await within(LIMIT, Promise.race([once(client, 'secureConnect'), clientError]), 'handshake');
  assert.ok(client.authorized, `certificate verified: ${client.authorizationError}`);
  assert.is(client.getPeerCertificate().subject.CN, 'localhost');
  const clientGot = readExactly(client, down.length);
  client.write(up);

  const { b: atServer, s: serverTls } = await within(LIMIT, serverGot, 'client -> server');
  assert.ok(atServer.equals(up), 'client -> server bytes intact');
  assert.ok((await within(LIMIT, clientGot, 'server -> client')).equals(down), 'server -> client bytes intact');

  // The encrypted stream (payload plus TLS framing) went through the rings.
  assertThroughRing(clientRing, { tx: up.length, rx: down.length }, 'tls client');
  assertThroughRing(serverRing, { tx: down.length, rx: up.length }, 'tls server');

  const closed = Promise.all([once(clientRing, 'close'), once(serverRing, 'close'), once(serverTls, 'close')]);
  client.end();
  await within(LIMIT, closed, 'tls close');
  server.close();
});

// ---- http2 --------------------------------------------------------------------------------------

test('http2: client and server over RingSockets, concurrent streams with request and response bodies', async () => {
  const [clientRing, serverRing] = await hostPair();
  const server = http2.createServer();
  server.on('stream', (stream, headers) => {
    const parts = [];
    stream.on('data', (d) => parts.push(d)).on('end', () => {
      const body = Buffer.concat(parts);
      const reply = Buffer.concat([Buffer.from(`${headers[':path']} ${sha(body)}\n`), body.reverse()]);
      stream.respond({ ':status': 200, 'content-type': 'application/octet-stream', 'x-len': String(body.length) });
      stream.end(reply);
    });
  });
  server.emit('connection', serverRing);

  const session = http2.connect('http://localhost', { createConnection: () => clientRing });
  const sessionError = new Promise((_, reject) => session.once('error', reject));
  const N = 6;
  const bodies = Array.from({ length: N }, (_, i) => random(100 * KiB + i * 37 * KiB, 100 + i));
  const results = await within(LIMIT, Promise.race([sessionError, Promise.all(bodies.map((body, i) =>
    new Promise((resolve, reject) => {
      const req = session.request({ ':method': 'POST', ':path': `/s${i}` });
      let headers;
      req.once('response', (h) => (headers = h)).once('error', reject);
      readAll(req).then((b) => resolve({ headers, b }), reject);
      req.end(body);
    })))]), 'http2 streams');

  let total = 0;
  results.forEach(({ headers, b }, i) => {
    const body = bodies[i];
    total += body.length;
    assert.is(headers[':status'], 200);
    assert.is(headers['x-len'], String(body.length));
    const nl = b.indexOf(10);
    assert.is(b.subarray(0, nl).toString(), `/s${i} ${sha(body)}`);
    assert.ok(b.subarray(nl + 1).equals(Buffer.from(body).reverse()), `stream ${i} response body`);
  });
  assertThroughRing(clientRing, { tx: total, rx: total }, 'http2 client');

  const closed = Promise.all([once(clientRing, 'close'), once(serverRing, 'close')]);
  session.close();
  await within(LIMIT, closed, 'http2 close');
  await within(LIMIT, new Promise((resolve) => server.close(resolve)), 'http2 server close');
});

// ---- ws -----------------------------------------------------------------------------------------

test('ws: WebSocket echo (text, binary, one message >= 1 MiB) over RingSockets, clean close', async () => {
  const [clientRing, serverRing] = await hostPair();
  const httpServer = http.createServer((_req, res) => res.writeHead(426).end());
  const wss = new WebSocketServer({ noServer: true });
  let serverWs;
  httpServer.on('upgrade', (req, socket, head) => {
    wss.handleUpgrade(req, socket, head, (ws) => {
      serverWs = ws;
      ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
    });
  });
  httpServer.emit('connection', serverRing);

  const ws = new WebSocket('ws://localhost/x', { createConnection: () => clientRing });
  const wsError = new Promise((_, reject) => ws.once('error', reject));
  await within(LIMIT, Promise.race([once(ws, 'open'), wsError]), 'ws open');

  const replies = [];
  let want;
  ws.on('message', (data, isBinary) => {
    replies.push({ data, isBinary });
    if (replies.length === want?.n) want.resolve();
  });
  const big = random(1 * MiB + 123, 21);
  const sent = [
    { data: 'hello over the ring', binary: false },
    { data: random(1000, 22), binary: true },
    { data: 'ünïcödé ✓', binary: false },
    { data: big, binary: true },
    { data: 'last', binary: false },
  ];
  const all = new Promise((resolve) => (want = { n: sent.length, resolve }));
  for (const m of sent) ws.send(m.data, { binary: m.binary });
  await within(LIMIT, Promise.race([all, wsError]), 'ws echoes');

  sent.forEach((m, i) => {
    const r = replies[i];
    assert.is(r.isBinary, m.binary, `message ${i} kind`);
    if (m.binary) assert.ok(Buffer.from(r.data).equals(m.data), `message ${i} bytes`);
    else assert.is(r.data.toString('utf8'), m.data, `message ${i} text`);
  });
  assertThroughRing(clientRing, { tx: big.length, rx: big.length }, 'ws client');

  const closed = Promise.all([once(ws, 'close'), once(serverWs, 'close'), once(clientRing, 'close'), once(serverRing, 'close')]);
  ws.close(1000, 'done');
  const [[code, reason]] = await within(LIMIT, closed, 'ws close');
  assert.is(code, 1000);
  assert.is(reason.toString(), 'done');
  wss.close();
  httpServer.close();
});

// ---- undici -------------------------------------------------------------------------------------

function echoServer() {
  return http.createServer((req, res) => {
    const parts = [];
    req.on('data', (d) => parts.push(d)).on('end', () => {
      const body = Buffer.concat(parts);
      res.setHeader('x-sha', sha(body));
      res.end(`${req.method} ${req.url} ${body.length}`);
    });
  });
}

test('undici: Client with a connect function returning RingSockets, several requests with bodies', async () => {
  const server = echoServer();
  const ring = ringListener(server);
  const connects = [];
  const client = new Client('http://localhost', {
    connect: (opts, callback) => {
      connects.push(opts);
      ring.connect().then((s) => callback(null, s), (e) => callback(e, null));
    },
  });
  try {
    let total = 0;
    for (let i = 0; i < 4; i++) {
      const body = random(200 * KiB + i, 30 + i);
      total += body.length;
      const res = await within(LIMIT, client.request({ origin: 'http://localhost', path: `/u${i}`, method: 'POST', body }), `request ${i}`);
      assert.is(res.statusCode, 200);
      assert.is(res.headers['x-sha'], sha(body));
      assert.is(await res.body.text(), `POST /u${i} ${body.length}`);
    }
    assert.is(connects.length, 1, 'one kept-alive ring connection carried every request');
    assert.is(ring.accepted.length, 1);
    assertThroughRing(ring.clients[0], { tx: total }, 'undici client');
    assertThroughRing(ring.accepted[0], { rx: total }, 'undici server side');
  } finally {
    await client.close();
    ring.close();
    server.close();
  }
});

test('undici: fetch with an Agent dispatcher whose connect returns RingSockets, concurrent requests', async () => {
  const server = echoServer();
  const ring = ringListener(server);
  const dispatcher = new Agent({
    connect: (_opts, callback) => { ring.connect().then((s) => callback(null, s), (e) => callback(e, null)); },
  });
  try {
    const bodies = Array.from({ length: 5 }, (_, i) => random(150 * KiB + i * 1000, 40 + i));
    const texts = await within(LIMIT, Promise.all(bodies.map(async (body, i) => {
      const res = await fetch(`http://localhost/f${i}`, { method: 'PUT', body, dispatcher });
      assert.is(res.status, 200);
      assert.is(res.headers.get('x-sha'), sha(body));
      return res.text();
    })), 'fetches');
    assert.equal(texts, bodies.map((b, i) => `PUT /f${i} ${b.length}`));
    const total = bodies.reduce((n, b) => n + b.length, 0);
    assert.ok(ring.clients.length >= 1);
    const carried = ring.accepted.reduce((n, s) => n + s.channel.rx.stats().bytesOut, 0n);
    assert.ok(carried >= BigInt(total), `the server's rx rings carried ${carried} < ${total}`);
    const sent = ring.clients.reduce((n, s) => n + s.channel.tx.stats().bytesIn, 0n);
    assert.ok(sent >= BigInt(total), `the client's tx rings carried ${sent} < ${total}`);
  } finally {
    await dispatcher.close();
    ring.close();
    server.close();
  }
});

test.run();
