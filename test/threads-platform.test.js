// The threads platform: the same ChannelEnd interface as the host platform, between worker
// threads, waking through Atomics.waitAsync without blocking either event loop.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Worker, threadId } from 'node:worker_threads';
import { createThreadChannel, XwayError } from '../dist/index.js';
import { pump } from './host/fixtures/pump.js';
import { within } from './host/helpers.js';

const PEER = new URL('./fixtures/thread-peer.js', import.meta.url);
const MiB = 1 << 20;

test('a worker and the main thread stream 64 MiB each way, event-driven on both sides', async () => {
  const worker = new Worker(PEER, { workerData: { total: 64 * MiB } });
  const { end, offer } = createThreadChannel({ capacityA: 64 * 1024 }, threadId);
  worker.postMessage(offer, [offer.port]);
  const theirs = new Promise((resolve) => worker.once('message', resolve));
  const mine = await within(60_000, pump(end, { total: 64 * MiB, seed: 22 }), 'streaming');
  assert.equal(mine, { sent: 64 * MiB, got: 64 * MiB, mismatchAt: -1 });
  const result = await theirs;
  assert.is(result.event, 'done');
  assert.is(result.got, 64 * MiB);
  assert.is(result.mismatchAt, -1);
  end.close();
  await worker.terminate();
  // The main thread did sleep and was woken (a 64 KiB ring cannot hold 64 MiB).
  const waits = end.channel.tx.stats().producerWaits + end.channel.rx.stats().consumerWaits;
  assert.ok(waits > 0, 'the main thread never waited');
});

test('a terminated worker: the other side sees a reset, promptly', async () => {
  const worker = new Worker(PEER, { workerData: { total: 1e15 } });
  const { end, offer } = createThreadChannel({ capacityA: 64 * 1024 }, threadId);
  worker.postMessage(offer, [offer.port]);
  let terminatedAt = 0;
  const gone = new Promise((resolve) => { end.onpeergone = () => resolve(performance.now()); });
  const result = pump(end, {
    total: 1e15,
    onProgress: (got) => { if (got > 16 * MiB && !terminatedAt) { terminatedAt = performance.now(); worker.terminate(); } },
  }).then(() => null, (err) => err);
  const at = await within(10_000, gone, 'worker loss noticed');
  const err = await result;
  assert.instance(err, XwayError);
  assert.is(err.code, 'ECONNRESET');
  assert.ok(at - terminatedAt < 1000, `${(at - terminatedAt).toFixed(1)} ms`);
  end.close();
});

test.run();
