// Links cost descriptors per pair of threads, not per connection (docs/links.md, "Descriptors"):
// after the first connection between two processes (or two threads), hundreds more add none in
// either, and once they are all closed and the link has been idle for LINK_IDLE_MS it goes, with
// every descriptor it held. Counted by the kernel: /proc/<pid>/fd of real processes.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { fdDiff, fdsOf, linkMappings, settle, sleep, startPeer, useTempRegistry } from './helpers.js';

useTempRegistry(test, 'xlink-fd-');
const MORE = 500; // connections after the first: a per-connection descriptor would show as 500
const IDLE_MS = 300; // XWAY_LINK_IDLE_MS for these processes (default 2000)
const env = { XWAY_LINK_IDLE_MS: String(IDLE_MS) };

/** The thread's event channel (an epoll set) is made at its first host link and kept for the
 *  thread's life, as libuv keeps its own: the one descriptor a link may leave behind. */
const isEventPoll = (fd) => fd.endsWith('anon_inode:[eventpoll]');

/** Waits for the link(s) of `pids` to go: no link region left open in any of them. */
const linkGone = (pids) => settle(() => pids.map((pid) => fdsOf(pid).filter((f) => f.includes('xway-link')).length), pids.map(() => 0), IDLE_MS + 3000);

test(`two processes: ${MORE} connections after the first add no descriptor to either; an idle link leaves none`, async () => {
  const server = await startPeer({ env });
  const client = await startPeer({ env });
  try {
    const { port } = await server.call('listen', {});
    const start = { server: fdsOf(server.pid), client: fdsOf(client.pid) };

    const first = await client.call('connect', { port, n: 1, echo: 16 });
    assert.is(first.ring, 1, 'the first connection rides a ring');
    const linked = { server: fdsOf(server.pid), client: fdsOf(client.pid) };
    const setUp = { server: fdDiff(start.server, linked.server).added, client: fdDiff(start.client, linked.client).added };
    // The link itself: a control socket, the region's memfd, an eventfd each way (+ the thread's
    // event poll, once).
    for (const side of ['server', 'client']) {
      assert.ok(setUp[side].length >= 3 && setUp[side].length <= 5, `${side}: the link's own descriptors: ${setUp[side].join(', ')}`);
    }

    const more = await client.call('connect', { port, n: MORE, echo: 64 });
    assert.is(more.ring, MORE, `all ${MORE} ride the ring: ${JSON.stringify(more)}`);
    assert.is(more.bad + more.echoFailed, 0, 'every connection echoed its own bytes');
    for (const side of ['server', 'client']) {
      const pid = side === 'server' ? server.pid : client.pid;
      const diff = fdDiff(linked[side], fdsOf(pid));
      assert.equal(diff, { added: [], removed: [] }, `${side}: ${MORE} more connections changed its descriptors`);
    }
    assert.ok(linkMappings(client.pid).length > 0 && linkMappings(server.pid).length > 0, 'both map the link region');

    await client.call('close');
    const left = await linkGone([server.pid, client.pid]);
    assert.equal(left, [0, 0], `the link region is still open ${IDLE_MS} ms + 3 s after the last connection closed`);
    for (const side of ['server', 'client']) {
      const pid = side === 'server' ? server.pid : client.pid;
      const diff = fdDiff(start[side], fdsOf(pid));
      assert.equal(diff.removed, [], `${side}: descriptors it had before are gone`);
      assert.equal(diff.added.filter((f) => !isEventPoll(f)), [], `${side}: the idle link left descriptors behind`);
      assert.equal(linkMappings(pid), [], `${side}: the idle link left mappings behind`);
    }
    const closedBy = client.events.filter((e) => e.event === 'link-closed');
    assert.ok(closedBy.some((e) => e.side === 'initiator' && /closed/.test(e.reason)), `the client closed its idle link: ${JSON.stringify(closedBy)}`);

    // And again: a second link, made and left idle, ends exactly where the first one ended.
    const after = { server: fdsOf(server.pid), client: fdsOf(client.pid) };
    const again = await client.call('connect', { port, n: 20, echo: 16 });
    assert.is(again.ring, 20);
    await client.call('close');
    await linkGone([server.pid, client.pid]);
    assert.equal(fdDiff(after.server, fdsOf(server.pid)), { added: [], removed: [] }, 'server: a second idle link left descriptors behind');
    assert.equal(fdDiff(after.client, fdsOf(client.pid)), { added: [], removed: [] }, 'client: a second idle link left descriptors behind');
  } finally {
    await Promise.all([server.stop(), client.stop()]);
  }
});

test(`two threads of one process (server in a worker): ${MORE} connections after the first add no descriptor; an idle link leaves none`, async () => {
  const peer = await startPeer({ env });
  try {
    const { port } = await peer.call('listen', { worker: true });
    const start = fdsOf(peer.pid);
    const first = await peer.call('connect', { port, n: 1, echo: 16 });
    assert.is(first.ring, 1);
    const linked = fdsOf(peer.pid);
    const setUp = fdDiff(start, linked).added;
    assert.ok(setUp.length >= 1 && setUp.length <= 3, `a threads link's lifeline: ${setUp.join(', ')}`);
    assert.ok(setUp.every((f) => /socket:/.test(f)), `a threads link needs no memfd nor eventfd: ${setUp.join(', ')}`);

    const more = await peer.call('connect', { port, n: MORE, echo: 64 });
    assert.is(more.ring, MORE, JSON.stringify(more));
    assert.is(more.bad + more.echoFailed, 0, 'every connection echoed its own bytes');
    assert.equal(fdDiff(linked, fdsOf(peer.pid)), { added: [], removed: [] }, `${MORE} more connections changed the descriptors`);

    await peer.call('close');
    const diff = await settle(() => fdDiff(start, fdsOf(peer.pid)), { added: [], removed: [] }, IDLE_MS + 3000);
    assert.equal(diff, { added: [], removed: [] }, 'the idle threads link left descriptors behind');
  } finally {
    await peer.stop();
  }
});

test(`a link used again and again, each time before it was idle for ${IDLE_MS} ms, stays up; idle that long, it goes`, async () => {
  const server = await startPeer({ env });
  const client = await startPeer({ env });
  try {
    const { port } = await server.call('listen', {});
    const closes = () => client.events.filter((e) => e.event === 'link-closed');
    const t0 = performance.now();
    // Bursts with pauses of half the idle time, for several idle times in all: the link is never
    // idle for IDLE_MS, so it is the same link throughout.
    while (performance.now() - t0 < IDLE_MS * 4) {
      const made = await client.call('connect', { port, n: 20, echo: 16 });
      assert.is(made.ring, 20);
      await client.call('close');
      await sleep(IDLE_MS / 2);
    }
    assert.equal(closes(), [], 'the link closed while in use');
    const left = await linkGone([server.pid, client.pid]);
    assert.equal(left, [0, 0], 'left idle, the link went');
    assert.is(closes().length, 1);
  } finally {
    await Promise.all([server.stop(), client.stop()]);
  }
});

test.run();
