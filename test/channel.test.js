// Channel: two rings in one region, each side's tx is the other's rx.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Channel, createSharedMemory, RESERVED_BYTES, CHANNEL_HEADER, RING_HEADER } from '../dist/index.js';
import { throwsCode } from './helpers.js';

const OFFSET = RESERVED_BYTES;

test('byteLength covers the control block and both rings', () => {
  assert.is(Channel.byteLength(4096), CHANNEL_HEADER + 2 * (RING_HEADER + 4096));
  assert.is(Channel.byteLength(4096, 8192), CHANNEL_HEADER + 2 * RING_HEADER + 4096 + 8192);
});

test('each side writes its tx and reads the other side\'s', () => {
  const memory = createSharedMemory({ bytes: Channel.byteLength(4096, 8192) });
  const a = Channel.create(memory, OFFSET, { capacityA: 4096, capacityB: 8192 });
  const b = Channel.attach(memory, OFFSET, { capacityA: 4096, capacityB: 8192 });
  assert.is(a.side, 'initiator');
  assert.is(b.side, 'acceptor');
  assert.is(a.tx.capacity, 4096);
  assert.is(a.rx.capacity, 8192);
  a.tx.write(Buffer.from('ping'));
  b.tx.write(Buffer.from('pong'));
  assert.is(b.rx.read().toString(), 'ping');
  assert.is(a.rx.read().toString(), 'pong');
  assert.is(a.tx.offset, b.rx.offset);
});

test('attach refuses capacities other than the agreed ones, and an empty region', () => {
  const memory = createSharedMemory({ bytes: 2 * Channel.byteLength(8192) });
  Channel.create(memory, OFFSET, { capacityA: 4096 });
  throwsCode(assert, () => Channel.attach(memory, OFFSET, { capacityA: 8192 }), 'ERR_XWAY_RING_CORRUPT');
  throwsCode(assert, () => Channel.attach(memory, OFFSET, { capacityA: 4096, capacityB: 8192 }), 'ERR_XWAY_RING_CORRUPT');
  throwsCode(assert, () => Channel.attach(memory, OFFSET + Channel.byteLength(4096), { capacityA: 4096 }), 'ERR_XWAY_RING_CORRUPT');
  throwsCode(assert, () => Channel.create(memory, OFFSET, { capacityA: 3000 }), 'ERR_OUT_OF_RANGE');
  throwsCode(assert, () => Channel.create(memory, 32, { capacityA: 4096 }), 'ERR_OUT_OF_RANGE');
});

test('abort resets both directions and wakes a waiting peer', () => {
  const memory = createSharedMemory({ bytes: Channel.byteLength(4096) });
  const a = Channel.create(memory, OFFSET, { capacityA: 4096 });
  const b = Channel.attach(memory, OFFSET, { capacityA: 4096 });
  assert.ok(b.rx.prepareWaitData());
  assert.ok(a.abort(), 'the peer waits for data on our tx');
  throwsCode(assert, () => b.rx.read(), 'ECONNRESET');
  throwsCode(assert, () => b.tx.write(Buffer.from('x')), 'ECONNRESET');
  throwsCode(assert, () => a.rx.read(), 'ECONNRESET');
});

test.run();
