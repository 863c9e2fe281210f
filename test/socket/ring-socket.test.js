// RingSocket: stream semantics of a socket carried by a channel, on both platforms (a host
// channel between two ends in this process, and a thread channel), the same assertions each.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { once } from 'node:events';
import http from 'node:http';
import net from 'node:net';
import { threadId } from 'node:worker_threads';
import { RingSocket, listenHostChannels, connectHost, createThreadChannel, acceptThreadChannel } from '../../dist/index.js';
import { tempSocket, within } from '../host/helpers.js';

const KiB = 1024;

async function hostPair(options = {}) {
  const sock = tempSocket();
  let accepted;
  const acceptedEnd = new Promise((resolve) => (accepted = resolve));
  const listener = listenHostChannels(sock.path, { capacity: 64 * KiB }, accepted);
  const clientEnd = await connectHost(sock.path, { capacity: 64 * KiB });
  const serverEnd = await acceptedEnd;
  listener.close();
  sock.cleanup();
  return [RingSocket.over(clientEnd, options), RingSocket.over(serverEnd, options)];
}

function threadPair(options = {}) {
  const { end, offer } = createThreadChannel({ capacityA: 64 * KiB }, threadId);
  return [RingSocket.over(end, options), RingSocket.over(acceptThreadChannel(offer), options)];
}

const collect = (socket) => new Promise((resolve, reject) => {
  const parts = [];
  socket.on('data', (d) => parts.push(d)).once('end', () => resolve(Buffer.concat(parts))).once('error', reject);
});

const random = (n, seed) => {
  const b = Buffer.alloc(n);
  let x = seed;
  for (let i = 0; i < n; i++) { x ^= x << 13; x ^= x >>> 17; x ^= x << 5; b[i] = x; }
  return b;
};

for (const [platform, pair] of [['host', hostPair], ['threads', threadPair]]) {
  test(`${platform}: ordered, lossless both ways with writes far larger than the ring; end delivers everything first`, async () => {
    const [a, b] = await pair({ allowHalfOpen: true });
    const ab = random(3 * 1024 * KiB + 17, 1), ba = random(2 * 1024 * KiB + 5, 2);
    const gotB = collect(b), gotA = collect(a);
    const closed = Promise.all([once(a, 'close'), once(b, 'close')]);
    for (let off = 0; off < ab.length; off += 100 * KiB) a.write(ab.subarray(off, off + 100 * KiB));
    a.end();
    b.end(ba);
    assert.ok((await within(20_000, gotB, 'a->b')).equals(ab));
    assert.ok((await within(20_000, gotA, 'b->a')).equals(ba));
    assert.is(a.bytesWritten, ab.length);
    assert.is(b.bytesRead, ab.length);
    await within(5000, closed, 'both closed');
  });

  test(`${platform}: backpressure — write returns false when the ring is full, drain follows`, async () => {
    const [a, b] = await pair();
    b.pause();
    let writes = 0;
    while (a.write(Buffer.alloc(16 * KiB))) writes++;
    assert.ok(writes < 64, `${writes} writes accepted without backpressure`);
    const drained = once(a, 'drain');
    b.resume();
    await within(5000, drained, 'drain');
    a.destroy();
    b.destroy();
  });

  test(`${platform}: half-close with allowHalfOpen: the other direction keeps working`, async () => {
    const [a, b] = await pair({ allowHalfOpen: true });
    const gotB = collect(b);
    a.end('request');
    assert.is((await within(5000, gotB, 'request')).toString(), 'request');
    assert.ok(b.writable, 'b can still write after reading the end');
    const gotA = collect(a);
    b.end('response');
    assert.is((await within(5000, gotA, 'response')).toString(), 'response');
  });

  test(`${platform}: without allowHalfOpen, the end of the peer's stream ends ours`, async () => {
    const [a, b] = await pair();
    b.resume();
    a.resume();
    const closed = Promise.all([once(a, 'close'), once(b, 'close')]);
    a.end();
    await within(5000, closed, 'both closed');
    assert.is(b.readyState, 'closed');
  });

  test(`${platform}: destroy is close() (the peer reads the data, then end), resetAndDestroy a reset`, async () => {
    // Loopback TCP: close() with nothing unread sends FIN after the data; SO_LINGER 0 sends RST.
    {
      const [a, b] = await pair();
      const got = collect(b);
      const closed = new Promise((resolve) => b.once('close', resolve));
      a.write('x');
      a.destroy();
      assert.is((await within(5000, got, 'end after destroy')).toString(), 'x');
      assert.is(await within(5000, closed, 'close'), false, 'close without error');
    }
    {
      const [a, b] = await pair();
      const error = new Promise((resolve) => b.once('error', resolve));
      b.resume();
      a.resetAndDestroy();
      const err = await within(5000, error, 'reset seen');
      assert.is(err.code, 'ECONNRESET', err.message);
      assert.ok(b.destroyed);
      const late = await new Promise((resolve) => b.write('late', resolve));
      assert.is(late?.code, 'ERR_STREAM_DESTROYED', 'a write after the reset fails like net');
    }
  });

  test(`${platform}: setTimeout fires on inactivity`, async () => {
    const [a, b] = await pair();
    const fired = once(a.setTimeout(30), 'timeout');
    await within(2000, fired, 'timeout');
    a.destroy();
    b.destroy();
  });
}

test('empty writes complete and carry nothing', async () => {
  const [a, b] = await hostPair();
  const got = collect(b);
  await new Promise((resolve, reject) => a.write(Buffer.alloc(0), (e) => (e ? reject(e) : resolve())));
  a.end('x');
  assert.is((await within(5000, got, 'data')).toString(), 'x');
});

test('node:http server and client (keep-alive agent) run over ring sockets unchanged', async () => {
  const sock = tempSocket();
  const server = http.createServer((req, res) => {
    let n = 0;
    req.on('data', (d) => (n += d.length)).on('end', () => res.end(`${req.method} ${req.url} ${n}`));
  });
  const sockets = [];
  const listener = listenHostChannels(sock.path, {}, (end) => {
    const socket = RingSocket.over(end);
    sockets.push(socket);
    server.emit('connection', socket);
  });
  const agent = new http.Agent({ keepAlive: true });
  agent.createConnection = (_options, callback) => {
    connectHost(sock.path).then((end) => callback(null, RingSocket.over(end)), callback);
  };
  const bodies = [];
  for (let i = 0; i < 3; i++) {
    bodies.push(await within(10_000, new Promise((resolve, reject) => {
      const req = http.request({ host: 'localhost', path: `/r${i}`, method: 'POST', agent }, (res) => {
        let text = '';
        res.setEncoding('utf8').on('data', (d) => (text += d)).on('end', () => resolve(text));
      });
      req.on('error', reject);
      req.end(Buffer.alloc(300 * KiB));
    }), `request ${i}`));
  }
  assert.equal(bodies, [0, 1, 2].map((i) => `POST /r${i} ${300 * KiB}`));
  assert.is(sockets.length, 1, 'the keep-alive agent reused one ring connection');
  assert.ok(sockets[0].channel.rx.stats().bytesIn > BigInt(900 * KiB), 'the requests went through the ring');
  agent.destroy();
  listener.close();
  server.close();
  sock.cleanup();
});

test('the bytes really went through the ring (channel counters)', async () => {
  const [a, b] = await hostPair();
  const got = collect(b);
  a.end(Buffer.alloc(100 * KiB, 7));
  assert.is((await within(5000, got, 'data')).length, 100 * KiB);
  assert.is(a.channel.tx.stats().bytesIn, BigInt(100 * KiB));
  assert.is(a.transport, 'ring');
});

test('a RingSocket is a net.Socket with no libuv handle; a once(\'connect\') added after connecting still fires (tls relies on it)', async () => {
  const [a, b] = threadPair();
  assert.ok(a instanceof net.Socket && b instanceof net.Socket);
  assert.is(a._handle, null);
  assert.is(a.connecting, false);
  let calls = 0;
  await within(1000, new Promise((resolve) => a.once('connect', () => { calls++; resolve(); })), 'late connect listener');
  await new Promise((r) => setImmediate(r));
  assert.is(calls, 1);
  a.write('string chunks are encoded', 'utf8');
  const [d] = await within(1000, once(b, 'data'), 'data');
  assert.is(d.toString(), 'string chunks are encoded');
  a.destroy(); b.destroy();
});

test.run();
