// Garbage on the control socket: random bytes, truncated and out-of-range link hellos, stray or
// missing descriptors, regions that are too small or not a link, silence. Each is refused with a
// reason; the listener keeps serving good clients and keeps nothing of the refused ones.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { connectHost, listenHostChannels, LINK_IDLE_MS } from '../../dist/index.js';
import { nativeAddon } from '../../dist/platform/host/native.js';
import { encode, decode, MessageType } from '../../dist/platform/host/protocol.js';
import { CHUNK0_BYTES } from '../../dist/platform/common/link-layout.js';
import { tempSocket, openFds, newFds, mappedSegments, within, waitFor } from './helpers.js';
import { pump } from './fixtures/pump.js';

const MiB = 1 << 20;
const native = nativeAddon();

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

/** A region and an eventfd as a client would pass them (the caller closes both). */
function regionAndEvent(bytes = CHUNK0_BYTES) {
  const events = new native.EventChannel(() => {});
  const { port, fd } = events.allocPort();
  return { region: native.regionCreate(bytes), eventFd: fd, done: () => { events.closePort(port); events.close(); } };
}

test('random, truncated and out-of-range link hellos are refused; good clients still get links', async () => {
  const sock = tempSocket();
  const refusals = [];
  const ends = [];
  await warmUp(); // creates this thread's event channel, which lives as long as the thread
  const fdsBefore = openFds();
  const listener = listenHostChannels(sock.path, { setupTimeoutMs: 300, onRefused: (reason, message) => refusals.push({ reason, message }) }, (end) => {
    ends.push(end);
    pump(end, { total: MiB, seed: 2 }).then(() => end.close());
  });
  const hello = encode({ type: MessageType.Link, pid: 1, chunk0: CHUNK0_BYTES, place: { netns: '', container: '' } });
  let x = 99;
  const rand = () => { x ^= x << 13; x ^= x >>> 17; x ^= x << 5; return x >>> 0; };
  const cases = [];
  for (let i = 0; i < 60; i++) cases.push([Uint8Array.from({ length: 1 + (rand() % 40) }, rand)]); // noise
  for (let n = 1; n < hello.length; n++) cases.push([hello.subarray(0, n)]); // truncations
  const wrongVersion = Uint8Array.from(hello); wrongVersion[4] = 9;
  cases.push([wrongVersion], [encode({ type: MessageType.LinkAccept })], [Uint8Array.from([...hello, 0])], [hello]); // the last: no descriptors
  for (const [bytes] of cases) {
    const answer = await exchange(sock.path, bytes);
    assert.ok(answer === 'closed' || answer.type === MessageType.Refuse, `answer ${JSON.stringify(answer)}`);
  }
  // Descriptors that are not what they claim: a region too small for chunk 0, and one of the
  // right size that holds no link header.
  for (const [bytes, chunk0, why] of [[65536, CHUNK0_BYTES, /cannot be mapped/], [CHUNK0_BYTES, CHUNK0_BYTES, /not a link/], [CHUNK0_BYTES, 65536, /chunk 0/]]) {
    const { region, eventFd, done } = regionAndEvent(bytes);
    const answer = await exchange(sock.path, encode({ type: MessageType.Link, pid: 1, chunk0, place: { netns: '', container: '' } }), [region, eventFd]);
    native.closeFd(region);
    done();
    assert.is(answer.type, MessageType.Refuse);
    assert.match(refusals.at(-1).message, why);
  }
  // Silence after connecting: refused when the set-up time runs out.
  assert.is((await exchange(sock.path, null)).reason, 'malformed');
  assert.is(refusals.length, cases.length + 4, `refusals: ${refusals.length}`);
  assert.ok(refusals.some((r) => r.reason === 'version') && refusals.some((r) => r.reason === 'malformed'));

  const good = await connectHost(sock.path, { capacity: 65536 });
  assert.equal(await within(30_000, pump(good, { total: MiB, seed: 2 }), 'good client'), { sent: MiB, got: MiB, mismatchAt: -1 });
  good.close();
  await waitFor(() => ends.length === 1 && ends.every((e) => e.closed), 10_000, 'server side closed');
  listener.close();
  // The good client's link goes LINK_IDLE_MS after its last connection.
  await waitFor(() => mappedSegments().length === 0 && newFds(fdsBefore).length === 0, LINK_IDLE_MS + 3000, "nothing left behind").catch((err) => { console.log(mappedSegments(), newFds(fdsBefore)); throw err; });
  sock.cleanup();
});

async function warmUp() {
  const sock = tempSocket();
  let accepted;
  const closed = new Promise((resolve) => (accepted = resolve));
  const listener = listenHostChannels(sock.path, {}, (end) => { end.close(); accepted(); });
  (await connectHost(sock.path)).close();
  await closed;
  listener.close();
  sock.cleanup();
}

test.run();
