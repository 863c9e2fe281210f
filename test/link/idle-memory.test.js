// Idle rings give their pages back (docs/links.md, "Memory that goes idle"): after 8 MiB through a
// connection and about 2 s of quiet, the link region's allocated bytes — st_blocks of the memfd,
// seen through /proc/<pid>/fd in both processes — drop by at least a ring's size, and the
// connection still carries data exactly afterwards.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { linkRegions, residentKiB, sleep, startPeer, useTempRegistry } from './helpers.js';

useTempRegistry(test, 'xlink-idle-');
const RING = 256 * 1024; // xway's default ring capacity
const MiB = 1024 * 1024;

/** The one link region both processes hold: the same memfd, seen from each. */
function region(server, client) {
  const [s] = linkRegions(server.pid), [c] = linkRegions(client.pid);
  assert.ok(s && c, 'both processes hold the link region');
  assert.is(s.ino, c.ino, 'the same memfd');
  return { server: s.allocated, client: c.allocated };
}

test('after 8 MiB and ~2 s idle, the link region gives back at least a ring of pages; writing afterwards works', async () => {
  const server = await startPeer();
  const client = await startPeer();
  try {
    const { port } = await server.call('listen', {});
    const made = await client.call('connect', { port, n: 1, echo: 16 });
    assert.is(made.ring, 1);
    const streamed = await client.call('stream', { bytes: 8 * MiB });
    assert.ok(streamed.ok, '8 MiB echoed exactly');
    const busy = region(server, client);
    assert.ok(busy.server >= 2 * RING, `both rings were touched: ${busy.server} bytes allocated`);
    const rss = { server: residentKiB(server.pid), client: residentKiB(client.pid) };

    let idle = busy;
    const deadline = Date.now() + 3500; // IDLE_RELEASE_MS is 1 s: a sweep notes the ring idle, the next gives it back
    while (Date.now() < deadline && busy.server - idle.server < RING) {
      await sleep(100);
      idle = region(server, client);
    }
    const after = { server: residentKiB(server.pid), client: residentKiB(client.pid) };
    console.log(`  link region allocated: ${busy.server / 1024} KiB after 8 MiB, ${idle.server / 1024} KiB idle; shared resident memory: server ${rss.server.shmem} -> ${after.server.shmem} KiB, client ${rss.client.shmem} -> ${after.client.shmem} KiB`);
    assert.ok(busy.server - idle.server >= RING, `the server's view: ${busy.server} -> ${idle.server} bytes`);
    assert.ok(busy.client - idle.client >= RING, `the client's view: ${busy.client} -> ${idle.client} bytes`);

    const again = await client.call('stream', { bytes: 1 * MiB });
    assert.ok(again.ok, 'a 1 MiB echo after the pages were given back comes back exactly');
    const echoed = await client.call('echo', { bytes: 100 });
    assert.is(echoed.bad + echoed.failed, 0);
  } finally {
    await Promise.all([server.stop(), client.stop()]);
  }
});

test.run();
