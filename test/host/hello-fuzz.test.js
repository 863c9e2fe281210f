// Garbage on the control socket: random bytes, truncated and out-of-range hellos, stray
// descriptors, silence. Each is refused with a reason; the listener keeps serving good clients and
// keeps nothing of the refused ones.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createRequire } from 'node:module';
import { connectHost, listenHost } from '../../dist/index.js';
import { encode, decode, MessageType } from '../../dist/platform/host/protocol.js';
import { tempSocket, openFds, newFds, mappedSegments, within, waitFor } from './helpers.js';
import { pump } from './fixtures/pump.js';

const MiB = 1 << 20;
const SEGMENT = 196608; // a channel of two 64 KiB rings, rounded up to wasm pages
const native = createRequire(import.meta.url)('../../native/build/Release/xway_native.node');

/** Connects, sends `bytes` (with `fds`), and resolves with the decoded answer or 'closed'. */
function exchange(path, bytes, fds = []) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no answer within 3 s')), 3000);
    const sock = new native.CtlSocket(native.ctlConnect(path), (data, got) => {
      clearTimeout(timer);
      for (const fd of got) native.closeFd(fd);
      sock.close();
      resolve(decode(data, got.length));
    }, () => { clearTimeout(timer); sock.close(); resolve('closed'); });
    if (bytes) sock.send(bytes, fds);
  });
}

test('random, truncated and out-of-range hellos are refused; good clients still get channels', async () => {
  const sock = tempSocket();
  const refusals = [];
  const ends = [];
  await warmUp(); // creates this thread's event channel, which lives as long as the thread
  const fdsBefore = openFds();
  const listener = listenHost(sock.path, { setupTimeoutMs: 300, onRefused: (reason) => refusals.push(reason) }, (end) => {
    ends.push(end);
    pump(end, { total: MiB, seed: 2 }).then(() => end.close());
  });
  const hello = encode({ type: MessageType.Hello, capacityA: 65536, capacityB: 65536, pid: 1, route: { target: '127.0.0.1', source: '127.0.0.1' } });
  let x = 99;
  const rand = () => { x ^= x << 13; x ^= x >>> 17; x ^= x << 5; return x >>> 0; };
  const cases = [];
  for (let i = 0; i < 60; i++) cases.push(Uint8Array.from({ length: 1 + (rand() % 40) }, rand)); // noise
  for (let n = 1; n < hello.length; n++) cases.push(hello.subarray(0, n)); // truncations
  for (const [a, b] of [[5000, 65536], [65536, 1 << 30], [0, 0], [4096, 2 ** 32 - 1]]) {
    cases.push(encode({ type: MessageType.Hello, capacityA: a, capacityB: b, pid: 1, route: { target: '127.0.0.1', source: '127.0.0.1' } }));
  }
  const wrongVersion = Uint8Array.from(hello); wrongVersion[4] = 9;
  cases.push(wrongVersion, encode({ type: MessageType.Ready }), Uint8Array.from([...hello, 0]));
  for (const bytes of cases) {
    const answer = await exchange(sock.path, bytes);
    assert.ok(answer === 'closed' || answer.type === MessageType.Refuse, `answer ${JSON.stringify(answer)}`);
  }
  // A hello carrying descriptors it should not: refused, and the descriptors are not kept.
  const stray = native.segmentCreate(65536);
  const answer = await exchange(sock.path, hello, [stray]);
  native.closeFd(stray);
  assert.is(answer.type, MessageType.Refuse);
  // Silence after connecting: refused when the set-up time runs out.
  assert.is((await exchange(sock.path, null)).reason, 'malformed');
  assert.is(refusals.length, cases.length + 2, `refusals: ${refusals.length}`);
  assert.ok(refusals.includes('capacity') && refusals.includes('version') && refusals.includes('malformed'));

  const good = await connectHost(sock.path, { capacity: 65536 });
  assert.equal(await within(30_000, pump(good, { total: MiB, seed: 2 }), 'good client'), { sent: MiB, got: MiB, mismatchAt: -1 });
  good.close();
  await waitFor(() => ends.length === 1 && ends.every((e) => e.closed), 10_000, 'server side closed');
  listener.close();
  assert.equal(mappedSegments(), []);
  assert.equal(newFds(fdsBefore), [], 'descriptors left behind');
  sock.cleanup();
});

test('a client that breaks the channel header before READY is refused, and nothing of it is kept', async () => {
  await warmUp();
  const sock = tempSocket();
  const refusals = [];
  const accepted = [];
  const fdsBefore = openFds();
  const listener = listenHost(sock.path, { onRefused: (reason, message) => refusals.push({ reason, message }) }, (end) => accepted.push(end));
  const memory = new WebAssembly.Memory({ initial: 8, maximum: 8, shared: true });
  const events = new native.EventChannel(() => {});
  const { port, fd: eventFd } = events.allocPort();
  const answer = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no answer within 3 s')), 3000);
    const ctl = new native.CtlSocket(native.ctlConnect(sock.path), (data, fds) => {
      const message = decode(data, fds.length);
      if (message.type === MessageType.Accept) {
        // Map the segment as a client would, then wreck the channel's control block.
        native.segmentMap(new Uint8Array(memory.buffer), 65536, SEGMENT, fds[0]);
        new Uint32Array(memory.buffer, 65536, 64).fill(0xdeadbeef);
        native.closeFd(fds[0]);
        native.closeFd(fds[1]);
        ctl.send(encode({ type: MessageType.Ready }), [eventFd]);
      } else {
        clearTimeout(timer);
        ctl.close();
        resolve(message);
      }
    }, () => { clearTimeout(timer); ctl.close(); resolve('closed'); });
    ctl.send(encode({ type: MessageType.Hello, capacityA: 65536, capacityB: 65536, pid: 1, route: { target: '127.0.0.1', source: '127.0.0.1' } }));
  });
  assert.is(answer.type, MessageType.Refuse);
  assert.equal(accepted, []);
  assert.is(refusals.length, 1);
  assert.match(refusals[0].message, /header/);
  native.segmentUnmap(new Uint8Array(memory.buffer), 65536, SEGMENT);
  events.closePort(port);
  events.close();
  listener.close();
  sock.cleanup();
  assert.equal(mappedSegments(), [], 'the listener kept the refused segment mapped');
  assert.equal(newFds(fdsBefore), [], 'descriptors left behind');
});

async function warmUp() {
  const sock = tempSocket();
  let accepted;
  const closed = new Promise((resolve) => (accepted = resolve));
  const listener = listenHost(sock.path, {}, (end) => { end.close(); accepted(); });
  (await connectHost(sock.path)).close();
  await closed;
  listener.close();
  sock.cleanup();
}

test.run();
