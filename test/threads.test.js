// Real worker threads moving real bytes: streaming, both directions at once, and the wake-up
// races that would lose a notification if the wait handshake were wrong.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Ring, Channel, createSharedMemory } from '../dist/index.js';
import { runRingWorker } from './helpers.js';

const OFFSET = 65536;
const MiB = 1 << 20;

test('two threads stream 64 MiB with random chunk sizes through a 4 KiB ring, every byte checked', async () => {
  const capacity = 4096;
  const memory = createSharedMemory({ bytes: Ring.byteLength(capacity) });
  Ring.create(memory, OFFSET, capacity);
  const total = 64 * MiB;
  const common = { memory, offset: OFFSET, capacity, total, seed: 42, maxChunk: 3 * capacity };
  const [p, c] = await Promise.all([
    runRingWorker({ ...common, role: 'producer' }),
    runRingWorker({ ...common, role: 'consumer' }),
  ]);
  assert.is(p.sent, total);
  assert.is(c.mismatchAt, -1, `first wrong byte at stream offset ${c.mismatchAt}`);
  assert.is(c.got, total);
  assert.is(p.timeouts + c.timeouts, 0, 'a waiter timed out: a wake-up was lost');
  const stats = Ring.attach(memory, OFFSET, capacity).stats();
  assert.is(stats.bytesIn, BigInt(total));
  assert.is(stats.bytesOut, BigInt(total));
  assert.ok(stats.finished);
});

test('a channel carries 64 MiB each way at once between two threads', async () => {
  const capacity = 16384;
  const memory = createSharedMemory({ bytes: Channel.byteLength(capacity) });
  Channel.create(memory, OFFSET, { capacityA: capacity });
  const total = 64 * MiB;
  const common = { memory, offset: OFFSET, capacity, total, maxChunk: 2 * capacity };
  const [a, b] = await Promise.all([
    runRingWorker({ ...common, role: 'duplex', side: 'initiator', seed: 3 }),
    runRingWorker({ ...common, role: 'duplex', side: 'acceptor', seed: 4 }),
  ]);
  for (const side of [a, b]) {
    assert.is(side.sent, total);
    assert.is(side.got, total);
    assert.is(side.mismatchAt, -1, `first wrong byte at stream offset ${side.mismatchAt}`);
  }
  // Read after both threads are done (a worker's own snapshot may predate the peer's last read).
  const ch = Channel.attach(memory, OFFSET, { capacityA: capacity });
  assert.is(ch.rx.stats().bytesOut, BigInt(total), 'initiator -> acceptor ring fully drained');
  assert.is(ch.tx.stats().bytesOut, BigInt(total), 'acceptor -> initiator ring fully drained');
});

test('no lost wake-up: a waiting consumer races a producer 20,000 times', async () => {
  const capacity = 4096;
  const memory = createSharedMemory({ bytes: Ring.byteLength(capacity) });
  Ring.create(memory, OFFSET, capacity);
  const common = { memory, offset: OFFSET, capacity, rounds: 20_000, maxGap: 40_000 };
  const [p, c] = await Promise.all([
    runRingWorker({ ...common, role: 'raceProducer' }),
    runRingWorker({ ...common, role: 'raceConsumer' }),
  ]);
  assert.is(c.got, 20_000);
  assert.is(c.wrong, 0);
  assert.is(c.timeouts + p.timeouts, 0, 'a waiter timed out: a wake-up was lost');
  const stats = Ring.attach(memory, OFFSET, capacity).stats();
  // The race must really have been run: the consumer had to wait often.
  assert.ok(stats.consumerWaits > 1000, `only ${stats.consumerWaits} waits: the race was not exercised`);
  // Notifications only ever answer an announced wait.
  assert.ok(stats.producerNotifies <= stats.consumerWaits, `${stats.producerNotifies} notifications for ${stats.consumerWaits} waits`);
});

test('no lost wake-up: a producer waiting for space races a consumer 20,000 times', async () => {
  const capacity = 4096;
  const memory = createSharedMemory({ bytes: Ring.byteLength(capacity) });
  Ring.create(memory, OFFSET, capacity);
  const common = { memory, offset: OFFSET, capacity, rounds: 20_000, seed: 9 };
  const [p, c] = await Promise.all([
    runRingWorker({ ...common, role: 'spaceProducer' }),
    runRingWorker({ ...common, role: 'spaceConsumer' }),
  ]);
  assert.is(c.got, p.sent);
  assert.is(c.timeouts + p.timeouts, 0, 'a waiter timed out: a wake-up was lost');
  const stats = Ring.attach(memory, OFFSET, capacity).stats();
  assert.ok(stats.producerWaits > 1000, `only ${stats.producerWaits} space waits: the race was not exercised`);
  assert.ok(stats.consumerNotifies <= stats.producerWaits);
});

test.run();
