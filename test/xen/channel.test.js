// Xen links end to end, on real Xen (inside dom0, run by test/xen/run.sh; a domain may grant pages
// to itself and bind event channels to itself, so both ends run in dom0): an endpoint and a link
// listener published in XenStore, one link offer per pair of threads, connections as OPEN records
// on the link, data both ways, what a connection costs once the link is up (grant pages, event
// channels, XenStore watches), refusals of malformed offers and hostile link records, and a peer's
// loss (a process killed: its kernel unmaps the link; a connection closed: a FIN on its ring).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, execFileSync } from 'node:child_process';
import { Worker } from 'node:worker_threads';
import fs from 'node:fs';
import { createInterface } from 'node:readline';
import { createRequire } from 'node:module';
import { randomBytes } from 'node:crypto';
import {
  xenUnavailableReason, xenSelfDomid, listenXen, connectXen, lookupXenEndpoint, xenPeerFor, regionPool, Link,
} from '../../dist/index.js';
import { xenResources } from '../../dist/platform/xen/resources.js';
import { XEN_CHUNK0_GRANTS, XEN_CHUNK0_PAGES } from '../../dist/platform/xen/link-layout.js';

const require = createRequire(import.meta.url);
const native = require('../../native/build/Release/xway_native.node');
const FIXTURE = new URL('./fixtures/peer.js', import.meta.url).pathname;
const HOSTILE = new URL('./fixtures/hostile-link.js', import.meta.url).pathname;
const PERMIT = new URL('../../scripts/xen-permit.sh', import.meta.url).pathname;
const LINK_IDLE_MS = 2000; // an initiator keeps an idle link this long (common/link.ts)
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Every link this process closes, and why (the victim's view in the hostile tests).
const linkEvents = [];
for (const name of ['fail', 'lost']) {
  const original = Link.prototype[name];
  Link.prototype[name] = function (...args) {
    if (!this.closed) linkEvents.push({ how: name, side: this.side, reason: String(args[0]), vanished: args[1] === 'vanished' });
    return original.apply(this, args);
  };
}

function within(ms, promise, what) {
  let timer;
  return Promise.race([promise.finally(() => clearTimeout(timer)),
    new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(`${what}: nothing within ${ms} ms`)), ms); })]);
}

async function settle(check, ms = 5000) {
  for (const t0 = Date.now(); Date.now() - t0 < ms; await sleep(20)) if (check()) return true;
  return check();
}

/** Each accepted end goes to `got`; resolves `next()` with the next one. */
function listenAll(port, options = {}) {
  const got = [];
  const waiters = [];
  const listener = listenXen(port, { capacity: 16384, ...options }, (end) => {
    const w = waiters.shift();
    if (w) w(end);
    else got.push(end);
  });
  return { listener, next: () => (got.length ? Promise.resolve(got.shift()) : new Promise((r) => waiters.push(r))) };
}

/** Each end's wake-ups go to every transfer using it (a transfer in each direction at once). */
function onWake(end, fn) {
  if (!end.wakers) {
    end.wakers = new Set();
    end.onwake = () => { for (const w of [...end.wakers]) w(); };
  }
  end.wakers.add(fn);
  return () => end.wakers.delete(fn);
}

/** Moves `data` from `from` to `to` through the rings, waking each other after every change. */
function transfer(from, to, data) {
  return new Promise((resolve) => {
    let sent = 0;
    const chunks = [];
    let received = 0;
    const pump = () => {
      while (sent < data.length) {
        const n = from.channel.tx.write(data.subarray(sent, sent + 8192));
        if (n === 0) break;
        sent += n;
        from.notify();
      }
    };
    const drain = () => {
      for (let buf; (buf = to.channel.rx.read()) !== null;) {
        chunks.push(buf);
        received += buf.length;
        to.notify();
      }
      if (received === data.length) {
        offPump();
        offDrain();
        resolve(Buffer.concat(chunks));
      }
    };
    const offPump = onWake(from, pump);
    const offDrain = onWake(to, drain);
    pump();
    drain();
  });
}

function startPeer(args, script = FIXTURE) {
  const child = spawn(process.execPath, [script, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  const lines = [];
  child.lines = lines;
  child.events = [];
  let waiter = null;
  createInterface({ input: child.stdout }).on('line', (line) => {
    const m = JSON.parse(line);
    lines.push(m);
    child.events.push(m);
    waiter?.();
  });
  child.next = (event, ms = 20000) => within(ms, new Promise((resolve) => {
    const look = () => {
      const i = lines.findIndex((m) => m.event === event);
      if (i >= 0) { waiter = null; resolve(lines.splice(i, 1)[0]); }
    };
    waiter = look;
    look();
  }), `peer event ${event}`);
  child.exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  return child;
}

function poolIsEmpty() {
  const pool = regionPool();
  return pool.freePages === pool.memory.buffer.byteLength / 65536 - 1;
}

/** This process holds no link, grant, mapping or port (watches: those of open listeners). */
async function nothingHeld(what, watches = 0) {
  await settle(() => { const r = xenResources(); return r.links === 0 && r.watches === watches; }, LINK_IDLE_MS + 3000);
  const r = xenResources();
  assert.equal(r, { grantedPages: 0, mappedPages: 0, links: 0, ports: 0, watches }, `${what}: ${JSON.stringify(r)}`);
  assert.ok(poolIsEmpty(), `${what}: every slot returned to the pool`);
}

function readAll(end) {
  const parts = [];
  for (let b; (b = end.channel.rx.read()) !== null;) parts.push(b);
  return Buffer.concat(parts).toString();
}

test('the Xen platform is available and knows its domain', () => {
  assert.is(xenUnavailableReason(), null);
  assert.is(xenSelfDomid(), 0);
});

test('a link set up through XenStore carries connections, data both ways; the offer is withdrawn', async () => {
  const { listener, next } = listenAll(7001);
  const ends = [];
  try {
    const ep = lookupXenEndpoint(0, 7001);
    assert.equal({ domid: ep.domid, port: ep.port, path: ep.path }, { domid: 0, port: 7001, path: '/local/domain/0/data/xway/7001' });
    assert.match(ep.link, /^[0-9a-f]{16}$/);
    assert.is(lookupXenEndpoint(0, 7002), null);
    const client = await within(10000, connectXen(0, 7001, { capacity: 16384 }), 'connectXen');
    const server = await within(10000, next(), 'accept');
    ends.push(client, server);
    assert.is(client.platform, 'xen');
    assert.equal(client.peer, { domid: 0 });
    assert.equal(server.peer, { domid: 0 });
    assert.is(client.constructor.name, 'XenChannelEnd');
    assert.ok(server.connection.port > 0 && server.connection.port === client.connection.port, 'both ends know the ephemeral port');
    // Different slots of one memory, the same pages underneath.
    assert.is.not(client.channel.offset, server.channel.offset);
    const up = randomBytes(300_000);
    const down = randomBytes(200_000);
    const [gotUp, gotDown] = await within(30000, Promise.all([transfer(client, server, up), transfer(server, client, down)]), 'transfer');
    assert.ok(gotUp.equals(up), 'client -> server bytes intact');
    assert.ok(gotDown.equals(down), 'server -> client bytes intact');
    // The link offer was withdrawn once answered; the listener's offers/0 node stays, dom0's.
    const xs = new native.XenStore(() => {});
    const offers = `/local/domain/0/data/xway/links/${ep.link}/offers`;
    assert.equal(xs.directory(offers), ['0']);
    assert.equal(xs.directory(`${offers}/0`), []);
    assert.equal(xs.getPermissions(`/local/domain/0/data/xway/links/${ep.link}`), ['n0']);
    xs.close();
    // Clean ends on both sides, then the client leaves: nothing is reset, nobody reports a loss.
    let lost = null;
    server.onpeergone = (r) => { lost = r; };
    client.channel.tx.end();
    client.notify();
    server.channel.tx.end();
    server.notify();
    await sleep(100);
    assert.ok(server.channel.rx.ended, 'server saw the client end its stream');
    assert.ok(client.channel.rx.ended, 'client saw the server end its stream');
    client.close();
    await sleep(200);
    assert.is(lost, null);
    assert.not.ok(server.channel.rx.isReset || server.channel.tx.isReset, 'an orderly close resets nothing');
    server.close();
  } finally {
    for (const end of ends) end.close();
    listener.close();
  }
  const xs = new native.XenStore(() => {});
  assert.is(xs.read('/local/domain/0/data/xway/7001/version'), null, 'closing the listener removed the endpoint');
  // The idle link closes after LINK_IDLE_MS: then nothing is held, on either side, and the link
  // listener, which stayed while the link was up, has gone too.
  await nothingHeld('after the idle link closed');
  assert.equal(xs.directory('/local/domain/0/data/xway/links'), [], 'and its link listener');
  xs.close();
});

test('a port listened on after the last one closed is served on the link already up: no second link', async () => {
  const first = listenAll(7014);
  const ends = [];
  try {
    const { link: key } = lookupXenEndpoint(0, 7014);
    ends.push(await within(10000, connectXen(0, 7014, { capacity: 16384 }), 'connect 7014'), await first.next());
    for (const end of ends.splice(0)) end.close();
    first.listener.close(); // the thread's last port; the link is still up (idle, not yet closed)
    const held = xenResources();
    assert.is(held.links, 2, 'the link is up, both ends');
    const second = listenAll(7015);
    try {
      assert.is(lookupXenEndpoint(0, 7015).link, key, 'the same link listener serves the new port');
      ends.push(await within(10000, connectXen(0, 7015, { capacity: 16384 }), 'connect 7015'), await second.next());
      assert.equal(xenResources(), held, 'no new link, grant, port or watch');
      const data = randomBytes(50_000);
      assert.ok((await within(10000, transfer(ends[0], ends[1], data), 'transfer')).equals(data));
    } finally {
      for (const end of ends) end.close();
      second.listener.close();
    }
  } finally {
    first.listener.close();
  }
  await nothingHeld('after the idle link closed');
});

test('after the first connection, 20 more add no grant page, no event channel and no XenStore watch', async () => {
  const { listener, next } = listenAll(7002);
  const ends = [];
  const before = xenResources();
  try {
    const t0 = performance.now();
    ends.push(await within(10000, connectXen(0, 7002, { capacity: 16384 }), 'first connect'), await next());
    const firstMs = performance.now() - t0;
    const afterFirst = xenResources();
    const times = [];
    for (let i = 0; i < 20; i++) {
      const t = performance.now();
      ends.push(await within(10000, connectXen(0, 7002, { capacity: 16384 }), `connect ${i}`), await next());
      times.push(performance.now() - t);
    }
    const after = xenResources();
    times.sort((a, b) => a - b);
    const median = times[10];
    console.log(`  first connection (link set-up) ${firstMs.toFixed(1)} ms, next 20: median ${median.toFixed(2)} ms (min ${times[0].toFixed(2)}, max ${times[19].toFixed(2)})`);
    console.log(`  held by this process (both ends): before ${JSON.stringify(before)}, after the first ${JSON.stringify(afterFirst)}, after 21 ${JSON.stringify(after)}`);
    // The first: chunk 0 (80 pages) and one 1 MiB chunk (256 pages) granted, the same mapped by
    // the acceptor; one event channel (a port each side); one watch per side on the peer domain.
    assert.equal(afterFirst.grantedPages - before.grantedPages, XEN_CHUNK0_GRANTS + 256);
    assert.equal(afterFirst.mappedPages - before.mappedPages, XEN_CHUNK0_GRANTS + 256);
    assert.equal(afterFirst.ports - before.ports, 2);
    assert.equal(afterFirst.watches - before.watches, 2);
    assert.equal(afterFirst.links - before.links, 2);
    // Twenty more: nothing (16 KiB rings: 9 pages each, 28 fit the chunk).
    assert.equal(after, afterFirst, 'twenty more connections took no Xen resource');
    // Every one carries data, each its own.
    const checks = [];
    for (let i = 0; i < ends.length; i += 2) {
      const data = randomBytes(20_000 + i);
      checks.push(transfer(ends[i], ends[i + 1], data).then((got) => got.equals(data)));
    }
    assert.ok((await within(30000, Promise.all(checks), 'transfers')).every(Boolean), 'every connection delivered its own bytes');
  } finally {
    for (const end of ends) end.close();
    listener.close();
  }
  await nothingHeld('after the idle link closed');
});

test('a connection closed on one side is a FIN on the other; the link stays for the next connection', async () => {
  const { listener, next } = listenAll(7003);
  try {
    const client = await within(10000, connectXen(0, 7003, { capacity: 16384 }), 'connectXen');
    const server = await next();
    let gone = null;
    server.onpeergone = (r) => { gone = r; };
    client.channel.tx.write(Buffer.from('partial'));
    client.notify();
    const held = xenResources();
    client.close(); // TCP's close: FIN after what was written
    await settle(() => server.channel.rx.ended || server.channel.rx.unread > 0);
    await sleep(50);
    assert.is(readAll(server), 'partial');
    assert.ok(server.channel.rx.ended, 'the server read a FIN');
    assert.not.ok(server.channel.rx.isReset, 'no reset');
    assert.is(gone, null, 'a closed connection is not a lost peer');
    server.close();
    // The next connection rides the same link: no new Xen resource.
    const again = await within(10000, connectXen(0, 7003, { capacity: 16384 }), 'connect again');
    const server2 = await next();
    assert.equal(xenResources(), held);
    again.close();
    server2.close();
  } finally {
    listener.close();
  }
  await nothingHeld('after the idle link closed');
});

test('a connection closed with bytes left unread is a reset on the other side', async () => {
  const { listener, next } = listenAll(7013);
  try {
    const client = await within(10000, connectXen(0, 7013, { capacity: 16384 }), 'connectXen');
    const server = await next();
    server.channel.tx.write(Buffer.from('never read'));
    server.notify();
    assert.ok(await settle(() => client.channel.rx.unread > 0), 'the bytes arrived');
    client.close(); // TCP's close with bytes unread: RST
    assert.ok(await settle(() => server.channel.rx.isReset || server.channel.tx.isReset), 'the server saw a reset');
    server.close();
  } finally {
    listener.close();
  }
  await nothingHeld('after the idle link closed');
});

test('offers/ or a domain\'s node removed: the listener puts it back, owner-only, and takes new links', async () => {
  // Any domain allowed to write a node may remove it with all under it. dom0 may remove anything,
  // so it plays here what a guest may do to its own node (guests.test.js: what it may not).
  const { listener, next } = listenAll(7012);
  const xs = new native.XenStore(() => {});
  try {
    const { link } = lookupXenEndpoint(0, 7012);
    const offers = `/local/domain/0/data/xway/links/${link}/offers`;
    for (const removed of [offers, `${offers}/0`]) {
      xs.rm(removed);
      assert.is(xs.directory(removed), null, `${removed} removed`);
      assert.ok(await settle(() => xs.directory(`${offers}/0`) !== null, 3000), `the listener put ${removed} back`);
      assert.equal(xs.getPermissions(offers), ['n0'], 'offers/: the listener\'s alone');
      assert.equal(xs.getPermissions(`${offers}/0`), ['n0'], 'its own domain\'s node');
      // A new link (the last one has gone idle and closed), offered through the node put back.
      assert.is(xenResources().links, 0);
      const client = await within(10000, connectXen(0, 7012, { capacity: 16384 }), `connect after ${removed} was removed`);
      const server = await within(10000, next(), 'accept');
      client.channel.tx.write(Buffer.from('still here'));
      client.notify();
      await settle(() => server.channel.rx.unread > 0);
      assert.is(readAll(server), 'still here');
      client.close();
      server.close();
      assert.ok(await settle(() => xenResources().links === 0, LINK_IDLE_MS + 3000), 'the idle link closed');
    }
  } finally {
    xs.close();
    listener.close();
  }
  await nothingHeld('after offers/ was put back');
});

test('a client process killed with SIGKILL: every connection on its link sees the peer lost; nothing leaks', async () => {
  const { listener, next } = listenAll(7004);
  const child = startPeer(['connect', '0', '7004', '3']);
  try {
    const servers = [await within(20000, next(), 'accept 1'), await next(), await next()];
    await child.next('connected');
    for (const s of servers) {
      await settle(() => s.channel.rx.unread > 0);
      assert.is(readAll(s), 'hello from the child');
    }
    assert.is(xenResources().links, 1, 'one link carries the three');
    const gone = servers.map((s) => new Promise((resolve) => { s.onpeergone = resolve; }));
    child.kill('SIGKILL');
    await child.exited;
    const reasons = await within(5000, Promise.all(gone), 'peer loss after SIGKILL');
    for (const r of reasons) assert.match(r, /unmapped the link/);
    // Its kernel closed its connections: a FIN on each (it had nothing of ours unread).
    for (const s of servers) assert.ok(s.channel.rx.ended && !s.vanished, 'a dead process is not a vanished domain');
    for (const s of servers) s.close();
  } finally {
    child.kill('SIGKILL');
    listener.close();
  }
  await nothingHeld('after the lost link was released');
});

test('a server process killed with SIGKILL: the client\'s connections see the peer lost; nothing leaks', async () => {
  const child = startPeer(['listen', '7005']);
  try {
    await child.next('listening');
    const clients = [];
    for (let i = 0; i < 3; i++) clients.push(await within(20000, connectXen(0, 7005, { capacity: 16384 }), 'connect to child'));
    for (let i = 0; i < 3; i++) await child.next('channel');
    const gone = clients.map((c) => new Promise((resolve) => { c.onpeergone = resolve; }));
    child.kill('SIGKILL');
    await child.exited;
    await within(5000, Promise.all(gone), 'server loss after SIGKILL');
    // Its kernel would have closed its sockets: FIN, since it left nothing of ours unread.
    for (const c of clients) {
      assert.not.ok(c.channel.rx.isReset || c.channel.tx.isReset, 'nothing was reset');
      assert.ok(c.channel.rx.ended, 'end of stream');
    }
    for (const c of clients) c.close();
  } finally {
    child.kill('SIGKILL');
  }
  await nothingHeld('after the lost link was released');
  const xs = new native.XenStore(() => {});
  xs.rm('/local/domain/0/data/xway'); // what the killed listener left
  xs.close();
});

test('malformed or hostile link offers are refused with a reason, and leave nothing behind', async () => {
  const refusals = [];
  const { listener } = listenAll(7006, { onRefused: (reason, text, client) => refusals.push({ reason, text, client }) });
  const xs = new native.XenStore(() => {});
  const { link } = lookupXenEndpoint(0, 7006);
  const offers = `/local/domain/0/data/xway/links/${link}/offers/0`;
  const offer = (name, fields) => {
    const entries = [[`${offers}/${name}`, '', null]];
    for (const [k, v] of Object.entries(fields)) entries.push([`${offers}/${name}/${k}`, v, null]);
    entries.push([`${offers}/${name}/state`, 'offered', null]);
    xs.writeAll(entries);
  };
  const answer = async (name) => {
    for (let i = 0; i < 100; i++) {
      const s = xs.read(`${offers}/${name}/state`);
      if (s !== 'offered') return s;
      await sleep(20);
    }
    return 'no answer';
  };
  const grefs = (from) => Array.from({ length: XEN_CHUNK0_GRANTS }, (_, i) => from + i).join(',');
  const good = { pages: String(XEN_CHUNK0_GRANTS), 'event-port': '5', 'grefs/0': grefs(1) };
  const e = new native.XenEventChannel(() => {});
  const pool = regionPool();
  try {
    const cases = [
      ['pages', { ...good, pages: String(XEN_CHUNK0_GRANTS - 1) }, new RegExp(`^refused:malformed ${XEN_CHUNK0_GRANTS - 1} pages offered`)],
      ['grefs', { ...good, 'grefs/0': '1,2,3,x' }, /^refused:malformed grefs\/0 entry/],
      ['many', { ...good, 'grefs/0': `${grefs(1)},99` }, /^refused:malformed grefs\/0 holds more/],
      ['short', { ...good, 'grefs/0': '1,2,3' }, /^refused:malformed grefs\/1 is missing/],
      ['num', { ...good, 'event-port': '05' }, /^refused:malformed event-port/],
      ['binary', { ...good, 'event-port': '\u0001\u00ff' }, /^refused:malformed event-port/],
    ];
    for (const [name, fields, expected] of cases) {
      offer(name, fields);
      assert.match(await answer(name), expected, name);
    }
    // Well-formed, but the references and port are not a real offer: the hypervisor says no.
    offer('fake', { ...good, 'event-port': String(e.bindUnbound(0)), 'grefs/0': grefs(900001) });
    assert.match(await answer('fake'), /^refused:internal /);
    // Real grants of pages that are not a link: the listener reads the header and refuses.
    const place = pool.allocate(XEN_CHUNK0_GRANTS * 4096);
    const real = native.xenGrantShare(pool.view(place.memory), place.offset, XEN_CHUNK0_GRANTS * 4096, 0, -1, -1);
    offer('zeros', { ...good, 'event-port': String(e.bindUnbound(0)), 'grefs/0': real.join(',') });
    assert.match(await answer('zeros'), /^refused:malformed not a Xen link: bad Xen link magic/);
    native.segmentUnmap(pool.view(place.memory), place.offset, XEN_CHUNK0_GRANTS * 4096);
    pool.release(place, XEN_CHUNK0_GRANTS * 4096);
    assert.is(refusals.length, cases.length + 2);
    assert.ok(refusals.every((r) => r.client === 0));
    const r = xenResources();
    assert.equal([r.links, r.mappedPages], [0, 0], 'nothing mapped for refused offers');
  } finally {
    e.close();
    xs.rm(offers);
    xs.close();
    listener.close();
  }
  await nothingHeld('after refused offers');
});

// What the victim (this process, listening) must do with each hostile link: close it with a
// reason matching `fail` (or `lost`), or keep it, answering `answers` (record types).
const HOSTILE_SCENARIOS = [
  { name: 'record of unknown type', fail: /unknown control record type 0/ },
  { name: 'record for the other side (ACCEPT)', fail: /record type 2 is not for the acceptor/ },
  { name: 'OPEN in a chunk never grown', fail: /OPEN in chunk 9 of 1/ },
  { name: 'GROW at a wrong page', fail: new RegExp(`chunk at page ${XEN_CHUNK0_PAGES + 6}, expected ${XEN_CHUNK0_PAGES}`) },
  { name: 'GROW whose grant table entries are not grants', fail: /chunk 1 cannot be mapped/ },
  { name: 'GROW past the per-link limit (LIMIT, link kept)', kept: true, answers: [6] },
  { name: 'OPENs with invalid capacities (refused, link kept)', kept: true, answers: [3, 3] },
  { name: 'OPEN whose channel passes its chunk', fail: /OPEN at 32768\+33536 outside chunk 1/ },
  { name: 'its liveness byte cleared by hand', lost: /unmapped the link/ },
  { name: 'scribbles over the control ring index', fail: /link failed/ },
];

test('hostile link records: the victim closes that link with a reason (or refuses and keeps it), and serves a good client throughout', async () => {
  const served = [];
  const { listener, next } = listenAll(7011);
  const accept = async () => { const s = await next(); served.push(s); onWake(s, () => { const b = s.channel.rx.read(); if (b) { s.channel.tx.write(b); s.notify(); } }); return s; };
  const good = await within(10000, connectXen(0, 7011, { capacity: 16384 }), 'good connect');
  await accept();
  const echo = async (end, what) => {
    const data = randomBytes(4096);
    const got = await within(5000, new Promise((resolve) => {
      const parts = [];
      const off = onWake(end, () => {
        for (let b; (b = end.channel.rx.read()) !== null;) parts.push(b);
        const all = Buffer.concat(parts);
        if (all.length >= data.length) { off(); resolve(all); }
      });
      end.channel.tx.write(data);
      end.notify();
    }), what);
    assert.ok(got.equals(data), `${what}: echoed`);
  };
  try {
    const baseline = xenResources();
    for (const s of HOSTILE_SCENARIOS) {
      const seen = linkEvents.length;
      const hostile = startPeer(['0', '7011', s.name], HOSTILE);
      try {
        await hostile.next('linked', 10000);
        const sent = await hostile.next('sent', 5000);
        assert.is(sent.error, undefined, `${s.name}: the hostile peer could do its deed: ${sent.error}`);
        const closed = () => linkEvents.slice(seen).filter((x) => x.side === 'acceptor');
        if (s.fail || s.lost) {
          await settle(() => closed().length > 0, 3000);
          const c = closed();
          assert.is(c.length, 1, `${s.name}: the victim closed one link: ${JSON.stringify(c)}`);
          assert.is(c[0].how, s.fail ? 'fail' : 'lost', `${s.name}: ${JSON.stringify(c[0])}`);
          assert.match(c[0].reason, s.fail ?? s.lost, s.name);
          await hostile.next('dropped', 3000); // the hostile peer sees its link unmapped
        } else {
          await settle(() => s.answers.every((op) => hostile.events.filter((x) => x.event === 'record' && x.op === op).length >= s.answers.filter((o) => o === op).length), 3000);
          assert.equal(hostile.events.filter((x) => x.event === 'record').map((x) => x.op), s.answers, `${s.name}: the victim's answers`);
          assert.equal(closed(), [], `${s.name}: no rule the victim can check was broken: the link stays`);
        }
        // The good client's connection still echoes, and a new one rides its link.
        await echo(good, `${s.name}: the good connection`);
        const fresh = await within(5000, connectXen(0, 7011, { capacity: 16384 }), `${s.name}: a new good connection`);
        await accept();
        await echo(fresh, `${s.name}: the new good connection`);
        fresh.close();
      } finally {
        hostile.kill('SIGKILL');
        await hostile.exited;
      }
      console.log(`  ${s.name}: ${s.fail || s.lost ? `link closed (${linkEvents.slice(seen).find((x) => x.side === 'acceptor')?.reason})` : 'refused, link kept'}`);
    }
    // Once every hostile process is gone, the victim holds what it held before.
    await settle(() => xenResources().links === baseline.links, 5000);
    assert.equal(xenResources(), baseline, 'no grant, mapping, port or watch left of the hostile links');
  } finally {
    good.close();
    for (const s of served) s.close();
    listener.close();
  }
  await nothingHeld('after the hostile tests');
});

test('connectXen fails cleanly: no endpoint, and capacity above the endpoint maximum', async () => {
  let err;
  try { await connectXen(0, 7999); } catch (e) { err = e; }
  assert.is(err?.code, 'ERR_XWAY_SETUP');
  const { listener } = listenAll(7007, { maxCapacity: 16384 });
  err = undefined;
  try { await connectXen(0, 7007, { capacity: 65536 }); } catch (e) { err = e; }
  listener.close();
  assert.is(err?.code, 'ERR_XWAY_SETUP');
  assert.match(err.message, /exceeds/);
  await nothingHeld('after failed connects');
});

test('the administrator helper records addresses and the switch finds the domain', () => {
  const out = execFileSync('sh', [PERMIT, '0=192.0.2.9,fe80::1'], { encoding: 'utf8' });
  assert.match(out, /192\.0\.2\.9 -> domain 0/);
  assert.is(xenPeerFor('192.0.2.9'), 0);
  assert.is(xenPeerFor('FE80::1'), 0);
  assert.is(xenPeerFor('192.0.2.99'), null);
  const xs = new native.XenStore(() => {});
  // dom0 owns the map; only dom0 is recorded, so nobody else may read it.
  assert.equal(xs.getPermissions('/local/xway/hosts/192-0-2-9'), ['n0']);
  assert.equal(xs.getPermissions('/local/xway/hosts'), ['n0']);
  // XenStore refuses permissions naming a domain that does not exist; the helper says so first.
  let err;
  try { execFileSync('sh', [PERMIT, '32000=192.0.2.7'], { encoding: 'utf8', stdio: 'pipe' }); } catch (e) { err = e; }
  assert.is(err?.status, 2);
  assert.match(err.stderr, /domain 32000 does not exist/);
  assert.is(xenPeerFor('192.0.2.7'), null);
  execFileSync('sh', [PERMIT, '--revoke', '0']);
  assert.is(xenPeerFor('192.0.2.9'), null);
  assert.equal(xs.directory('/local/xway/hosts'), []);
  xs.close();
});

test('a process exits by itself once its listener and connections are closed', async () => {
  const child = startPeer(['all-and-close', '7008']);
  try {
    await child.next('closed');
    const { code, signal } = await within(10000, child.exited, 'child exit');
    assert.is(code, 0);
    assert.is(signal, null);
  } finally {
    child.kill('SIGKILL');
  }
});

test('a worker thread that exits with a Xen listener and connection open leaves no descriptors', async () => {
  const fds = () => fs.readdirSync('/proc/self/fd').length;
  const before = fds();
  const worker = new Worker(new URL('./fixtures/worker.js', import.meta.url));
  const opened = await within(20000, new Promise((resolve, reject) => {
    worker.once('message', resolve);
    worker.once('error', reject);
  }), 'worker set-up');
  assert.is(opened, 'open');
  assert.ok(fds() > before, 'the worker opened descriptors (evtchn, XenStore)');
  await worker.terminate();
  await sleep(200);
  assert.is(fds(), before);
  const xs = new native.XenStore(() => {});
  xs.rm('/local/domain/0/data/xway'); // the worker never closed its listener
  xs.close();
});

test.run();
