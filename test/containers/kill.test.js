// SIGKILL of the server in container A while a client in container B holds a connection to it:
// the client must see what TCP shows — measured here, in the same run, over the same veth path —
// event for event and error code for error code, within 100 ms of the kill, and keep nothing of
// the dead link (no descriptor, no xway mapping). Three cases, as in the semantics suite: nothing
// unread (FIN), data the server never read (RST), data the server wrote just before it died.
import * as assert from 'uvu/assert';
import { labSuite, unavailable, tcpReason } from './common.js';
import { createLab, sleep } from './netns.js';

const { s, test } = labSuite('containers: SIGKILL of the server in another namespace');
const LIMIT_MS = 100;
const IDLE_MS = 150; // the client's XWAY_LINK_IDLE_MS: an idle link goes away quickly

let lab, b, A, port = 7400;
s.before(async () => {
  if (unavailable) return;
  lab = createLab({ containers: { a: {}, b: {} } });
  A = lab.containers.a;
  b = await lab.agent('b', { env: { XWAY_DEBUG: '1', XWAY_LINK_IDLE_MS: String(IDLE_MS) } });
});
s.after(async () => { await lab?.close(); });

const linkFds = (r) => r.fds.filter((f) => /xway-(link|channel)/.test(f));
const kinds = (fds) => fds.map((f) => f.replace(/\d+/g, 'N')).sort();

/** The client's resources once it holds no link (polled for up to `ms`; the last look if never). */
async function withoutLink(ms) {
  const until = Date.now() + ms;
  for (;;) {
    const r = await b.ask('resources');
    if ((linkFds(r).length === 0 && r.maps.length === 0) || Date.now() > until) return r;
    await sleep(25);
  }
}

/** One run: a server (node:net for 'tcp', xway for 'ring') in a fresh agent in A, the client in B. */
async function run(transport, sub) {
  const api = transport === 'tcp' ? 'net' : 'xway';
  const p = ++port;
  const a = await lab.agent('a', { env: { XWAY_DEBUG: '1', XWAY_LINK_IDLE_MS: String(IDLE_MS) } });
  try {
    await a.ask('listen', { api, port: p, host: '0.0.0.0', mode: 'hello', options: { pauseOnConnect: sub === 'unread' } });
    // A first connection, closed again, so that whatever a first connection sets up for good
    // (the addon, an event loop descriptor) is in the baseline; its link goes idle and away. (To a
    // server that reads: a paused server would hold the closed connection's slot, and the link.)
    await a.ask('listen', { api, port: p + 100, host: '0.0.0.0', mode: 'hello' });
    const warm = await b.ask('connect', { api, host: A.address, port: p + 100 });
    assert.not.ok(warm.error, JSON.stringify(warm.error));
    await b.ask('until', { conn: warm.conn, bytes: 5 });
    await b.ask('destroy', { conn: warm.conn });
    const baseline = await withoutLink(IDLE_MS + 3000);
    assert.equal(linkFds(baseline), [], 'the first connection\'s link went away once idle');

    const client = await b.ask('connect', { api, host: A.address, port: p });
    assert.not.ok(client.error, JSON.stringify(client.error));
    const accepted = await a.event('connection', (e) => e.remotePort === client.localPort);
    await b.ask('until', { conn: client.conn, bytes: 5 });
    if (sub === 'unread') assert.is(await b.ask('write', { conn: client.conn, data: 'unread' }), 'ok');
    if (sub === 'wrote') assert.is(await a.ask('write', { conn: accepted.conn, data: 'bye' }), 'ok');
    const held = await b.ask('resources');
    const killedAt = a.sigkill();
    const closed = await b.ask('closed', { conn: client.conn, timeoutMs: 5000 });
    const after = await withoutLink(1000);
    const closeAt = closed.log.find(([what]) => what.startsWith('close:'))?.[1];
    return {
      transport: { client: client.transport, server: accepted.transport },
      why: tcpReason(b.stderr, A.address, p),
      events: closed.log.map(([what]) => what),
      errors: closed.errors.map((e) => e.code),
      closed: closed.closed,
      ms: closeAt === undefined ? Infinity : closeAt - killedAt,
      baseline, held, after,
    };
  } finally {
    await a.kill();
  }
}

for (const [sub, what] of [['clean', 'nothing unread'], ['unread', 'data it never read'], ['wrote', 'data it had just written']]) {
  test(`the server in A is SIGKILLed with ${what}: the client in B sees what TCP shows, within ${LIMIT_MS} ms, and keeps nothing`, async () => {
    const tcp = await run('tcp', sub);
    assert.ok(tcp.closed, `the TCP reference closed: ${JSON.stringify(tcp.events)}`);
    const ring = await run('ring', sub);
    assert.equal(ring.transport, { client: 'ring', server: 'ring' }, `the connection rides a ring${ring.why ? ` (it took TCP: ${ring.why})` : ''}`);
    assert.equal(ring.events, tcp.events, 'the client\'s events are TCP\'s');
    assert.equal(ring.errors, tcp.errors, 'the client\'s errors are TCP\'s');
    assert.ok(ring.ms <= LIMIT_MS, `the client saw the end ${ring.ms.toFixed(1)} ms after the kill (TCP: ${tcp.ms.toFixed(1)} ms); at most ${LIMIT_MS} ms`);
    // Nothing of the link is left: no descriptor, no mapping, no more descriptors than before.
    assert.ok(linkFds(ring.held).length + ring.held.maps.length > 0, 'while connected, the client held the link (its memfd mapped)');
    assert.equal(linkFds(ring.after), [], 'no xway memfd is left open in the client');
    assert.equal(ring.after.maps, [], 'no xway mapping is left in the client');
    assert.equal(kinds(ring.after.fds), kinds(ring.baseline.fds), 'the client holds the descriptors it held before the connection');
  });
}

s.run();
