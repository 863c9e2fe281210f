// The switch between threads of one process: a connect() to a server in this process gets a
// thread channel (Atomics on one shared memory), set up through the host control protocol. The
// data path opens no event descriptor and maps no segment. (What the peer of a terminated worker
// observes is in test/semantics/, with node:net's outcome: a FIN, or a reset with data unread.)
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { once } from 'node:events';
import { Worker } from 'node:worker_threads';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import xway from '../../dist/index.js';
import { openFds, newFds, mappedSegments, within, useTempRegistry, eventQueue } from '../host/helpers.js';

const PEER = new URL('./fixtures/thread-peer.js', import.meta.url);
const XWAY_DIR = useTempRegistry(test, 'xsp-');
function startWorker(workerData) {
  const worker = new Worker(PEER, { workerData, env: { ...process.env, XWAY_DIR } });
  const events = eventQueue('worker');
  worker.on('message', (m) => events.push(m));
  worker.next = events.next;
  return worker;
}

function echoServer() {
  const accepted = [];
  const server = xway.createServer({ allowHalfOpen: true }, (socket) => {
    accepted.push(socket);
    socket.on('error', () => {});
    socket.pipe(socket);
  });
  return { server, accepted };
}

const listen = async (server) => {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return server.address().port;
};

/** Descriptors a host channel would open for its segment (a worker's own event loop opens
 *  event fds of its own, so those cannot tell). */
const segmentFds = (fds) => fds.filter((f) => /memfd|xway-channel/.test(f));

test('a worker thread\'s connection to a server in the main thread rides a thread channel, every byte checked', async () => {
  const { server, accepted } = echoServer();
  const port = await listen(server);
  const before = openFds();
  const mappedBefore = mappedSegments();
  const worker = startWorker({ mode: 'client', port, bytes: 8 << 20, keepOpen: true });
  try {
    const connected = await within(10_000, worker.next('connected'), 'worker connected');
    assert.is(connected.transport, 'ring');
    assert.is(connected.platform, 'threads');
    const echoed = await within(30_000, worker.next('echoed'), 'echo');
    assert.is(echoed.received, 8 << 20);
    assert.is(echoed.mismatches, 0);
    assert.is(accepted.length, 1);
    assert.is(accepted[0].platform, 'threads');
    assert.equal(segmentFds(newFds(before)), [], 'no segment for a thread channel');
    assert.equal(mappedSegments().filter((m) => !mappedBefore.includes(m)), [], 'nothing mapped');
    const tx = accepted[0].channel.tx.stats();
    assert.is(tx.bytesIn, BigInt(8 << 20));
  } finally {
    await worker.terminate();
    server.close();
  }
});

test('a server in a worker thread serves a client in the main thread; a client in the server\'s own thread works too', async () => {
  const worker = startWorker({ mode: 'server' });
  try {
    const { port } = await within(10_000, worker.next('listening'), 'worker listening');
    for (const run of [0, 1]) {
      const socket = xway.connect({ port, host: '127.0.0.1', transport: 'force' });
      await within(5000, once(socket, 'connect'), 'connect');
      assert.is(socket.platform, 'threads', `run ${run}`);
      const parts = [];
      socket.on('data', (d) => parts.push(d));
      const payload = Buffer.from('hello over a thread channel '.repeat(1000));
      socket.end(payload);
      await within(5000, once(socket, 'end'), 'echo end');
      assert.ok(Buffer.concat(parts).equals(payload));
      assert.is((await worker.next('connection')).platform, 'threads');
    }
  } finally {
    worker.postMessage('close');
    await within(5000, once(worker, 'exit'), 'worker exit');
  }

  // Same thread: the server and the client both here.
  const { server } = echoServer();
  const port = await listen(server);
  const socket = xway.connect({ port, host: '127.0.0.1', transport: 'force' });
  await within(5000, once(socket, 'connect'), 'connect');
  assert.is(socket.platform, 'threads');
  const parts = [];
  socket.on('data', (d) => parts.push(d));
  socket.end('same thread');
  await within(5000, once(socket, 'end'), 'echo end');
  assert.is(Buffer.concat(parts).toString(), 'same thread');
  await new Promise((resolve) => server.close(resolve));
});

test.run();
