// A producer that dies between stage() and the publish that would follow: its channel's stage
// record lets the consumer take the staged bytes in (Ring.adoptStaged, called by
// Channel.closeForPeer), as a TCP peer's kernel sends what write() had taken. The record is the
// peer's to write, so anything that does not describe bytes just past the tail is refused.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Channel, createSharedMemory } from '../dist/index.js';
import { C_STAGE_A, R } from '../dist/ring/layout.js';

const OFFSET = 65536;
const CAP = 4096;

function pair() {
  const memory = createSharedMemory({ bytes: OFFSET + Channel.byteLength(CAP) });
  const initiator = Channel.create(memory, OFFSET, { capacityA: CAP });
  const acceptor = Channel.attach(memory, OFFSET, { capacityA: CAP });
  const words = new Uint32Array(memory.buffer);
  return { initiator, acceptor, words, record: (OFFSET + C_STAGE_A) >>> 2 };
}
const text = (s) => Buffer.from(s);
const readAll = (ring) => ring.read()?.toString() ?? '';

test('staged bytes of a producer that went are taken in, once, in order, before its end', () => {
  const { initiator, acceptor } = pair();
  initiator.tx.write(text('a'));
  initiator.tx.stage(text('b'));
  initiator.tx.stage(text('cd'));
  assert.is(acceptor.rx.unread, 1, 'only the first write is published');
  // The initiator is gone: the acceptor closes on its behalf.
  assert.ok(acceptor.closeForPeer());
  assert.is(readAll(acceptor.rx), 'abcd');
  assert.ok(acceptor.rx.ended, 'then its end of stream');
  assert.is(acceptor.rx.adoptStaged(), 0, 'nothing is taken twice');
});

test('published bytes leave nothing to take in, whichever call published them', () => {
  for (const publish of [(tx) => tx.publish(), (tx) => tx.write(text('!')), (tx) => tx.writev([text('!')], 0, 0), (tx) => tx.end()]) {
    const { initiator, acceptor } = pair();
    initiator.tx.stage(text('xy'));
    publish(initiator.tx);
    const before = acceptor.rx.unread;
    assert.is(acceptor.rx.adoptStaged(), 0);
    assert.is(acceptor.rx.unread, before);
  }
});

test('a record the peer scribbled is refused: not at the tail, longer than the free space, or empty', () => {
  const { initiator, acceptor, words, record } = pair();
  initiator.tx.write(text('hello'));
  const tail = words[(OFFSET + 256 + R.TAIL) >>> 2]; // ring A's header follows the channel's 256 bytes
  assert.is(tail, 5);
  for (const [from, to] of [[tail - 1, tail + 3], [tail + 1, tail + 3], [tail, tail + CAP], [tail, tail - 1], [tail, tail]]) {
    words[record] = from >>> 0;
    words[record + 1] = to >>> 0;
    assert.is(acceptor.rx.adoptStaged(), 0, `record ${from}..${to}`);
    assert.is(acceptor.rx.unread, 5);
  }
  // A record that does describe bytes past the tail (whatever they hold) is taken: the peer's
  // own stream, within its own ring.
  words[record] = tail;
  words[record + 1] = tail + CAP - 5;
  assert.is(acceptor.rx.adoptStaged(), CAP - 5);
  assert.is(acceptor.rx.unread, CAP);
});

test('nothing is taken in after this side closed its reading end', () => {
  const { initiator, acceptor } = pair();
  initiator.tx.stage(text('late'));
  acceptor.rx.closeConsumer();
  assert.is(acceptor.rx.adoptStaged(), 0);
});

test('a stage record outside the memory, in its first page or misaligned is refused', () => {
  const { initiator } = pair();
  for (const at of [-8, 0, 65532, 65540, 1 << 30, 1.5]) {
    assert.throws(() => initiator.tx.useStageRecord(at), (e) => e.code === 'ERR_OUT_OF_RANGE', String(at));
  }
});

test.run();
