// The host platform between real processes: streaming, a peer killed with SIGKILL, a hostile
// peer scribbling over the shared headers, and garbage on the control socket.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { connectHost, listenHostChannels, XwayError, hostUnavailableReason, LINK_IDLE_MS } from '../../dist/index.js';
import { regionPool } from '../../dist/platform/common/region-pool.js';
import { pump } from './fixtures/pump.js';
import { startPeer, tempSocket, openFds, newFds, mappedSegments, sleep, within, waitFor } from './helpers.js';

const MiB = 1 << 20;

test('the host platform is available here', () => {
  assert.is(hostUnavailableReason(), null);
});

test('two processes stream 256 MiB each way at once; every byte checked on both sides', async () => {
  const sock = tempSocket();
  const total = 256 * MiB;
  const server = startPeer(['serve', sock.path, String(total), '11']);
  await server.next('listening');
  const end = await connectHost(sock.path, { capacity: 256 * 1024 });
  assert.is(end.peer.pid, server.pid, 'peer pid from the kernel');
  const mine = await within(60_000, pump(end, { total, seed: 12 }), 'streaming');
  const theirs = await server.next('done');
  end.close();
  assert.equal(mine, { sent: total, got: total, mismatchAt: -1 });
  assert.is(theirs.sent, total);
  assert.is(theirs.got, total);
  assert.is(theirs.mismatchAt, -1);
  assert.equal(await server.exited, { code: 0, signal: null }, 'the server exits by itself: nothing left open');
  sock.cleanup();
});

test('kill -9 of the peer mid-transfer: reset seen within 100 ms, nothing of the channel left', async () => {
  const sock = tempSocket();
  const fdsBefore = openFds(); // before the child: its stdout pipe closes when it dies
  const server = startPeer(['serve', sock.path, String(1e15), '5']);
  await server.next('listening');
  const freeBefore = regionPool().freePages;
  const end = await connectHost(sock.path);
  const cleanup = setTimeout(() => server.kill('SIGKILL'), 30_000).unref(); // never leave it behind
  let killedAt = 0;
  const goneAt = new Promise((resolve) => { end.onpeergone = (reason) => resolve({ at: performance.now(), reason }); });
  const result = pump(end, {
    total: 1e15,
    onProgress: (got) => {
      if (got > 32 * MiB && !killedAt) { killedAt = performance.now(); server.kill('SIGKILL'); }
    },
  }).then(() => null, (err) => err);
  const gone = await within(30_000, goneAt, 'peer death noticed');
  const err = await result;
  assert.ok(killedAt > 0);
  const delay = gone.at - killedAt;
  assert.ok(delay < 100, `reset seen ${delay.toFixed(1)} ms after the kill`);
  assert.instance(err, XwayError);
  assert.is(err.code, 'ECONNRESET');
  assert.ok(end.channel.rx.isReset);
  end.close();
  clearTimeout(cleanup);
  assert.equal(await server.exited, { code: null, signal: 'SIGKILL' });
  assert.equal(mappedSegments(), [], 'segment still mapped');
  assert.equal(newFds(fdsBefore), [], 'descriptors left behind');
  assert.ok(regionPool().freePages >= freeBefore, 'the slot went back to the pool');
  sock.cleanup();
});

test('a hostile peer scribbling over the headers: typed errors, the victim closes and lives on', async () => {
  const sock = tempSocket();
  const ends = [];
  const refusals = [];
  const fdsBefore = openFds();
  const listener = listenHostChannels(sock.path, { onRefused: (reason, message) => refusals.push(message) }, (end) => ends.push(end));
  const hostile = startPeer(['hostile', sock.path]);
  try {
    await hostile.next('connected');
    // The hostile client starts scribbling the moment its set-up call returns, so the listener may
    // already find the header corrupt when it completes the set-up (and refuse), or accept and
    // meet the corruption in the rings. Either is fine; what matters is typed errors, no hang.
    await waitFor(() => ends.length === 1 || refusals.length === 1, 10_000, 'hostile channel accepted or refused');
    if (ends.length === 1) {
      const victim = ends[0];
      const outcome = await Promise.race([
        pump(victim, { total: 1e15 }).then(() => 'finished', (err) => err),
        sleep(10_000).then(() => 'hung'),
      ]);
      assert.instance(outcome, XwayError, `outcome: ${outcome}`);
      assert.ok(['ERR_XWAY_RING_CORRUPT', 'ECONNRESET', 'EPIPE'].includes(outcome.code), outcome.code);
      victim.close();
    } else {
      assert.match(refusals[0], /ring header|impossible index/);
    }
    // The same listener still serves a good client (here, this very process).
    const good = await connectHost(sock.path);
    await waitFor(() => ends.length === (refusals.length ? 1 : 2), 10_000, 'good channel accepted');
    const served = ends[ends.length - 1];
    const [mine, theirs] = await within(30_000, Promise.all([pump(good, { total: 8 * MiB, seed: 4 }), pump(served, { total: 8 * MiB, seed: 5 })]), 'good client');
    assert.equal(mine, { sent: 8 * MiB, got: 8 * MiB, mismatchAt: -1 });
    assert.equal(theirs, { sent: 8 * MiB, got: 8 * MiB, mismatchAt: -1 });
    good.close();
    served.close();
  } finally {
    hostile.kill('SIGKILL');
    await hostile.exited;
    listener.close();
    sock.cleanup();
  }
  // The client's link outlives its last connection by LINK_IDLE_MS, for a reconnect; then it goes.
  await waitFor(() => newFds(fdsBefore).length === 0 && mappedSegments().length === 0, LINK_IDLE_MS + 3000, 'the idle link closed');
});

test.run();
