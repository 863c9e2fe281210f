// The Xen platform end to end, on real Xen (inside dom0, run by test/xen/run.sh): an endpoint
// published in XenStore, a client's offer of granted pages and an event port, the server's mapping,
// data both ways, refusals of malformed offers, and a peer's loss (close, and SIGKILL of another
// process) noticed through the unmap notification.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, execFileSync } from 'node:child_process';
import { Worker } from 'node:worker_threads';
import fs from 'node:fs';
import { createInterface } from 'node:readline';
import { createRequire } from 'node:module';
import { randomBytes } from 'node:crypto';
import {
  xenUnavailableReason, xenSelfDomid, listenXen, connectXen, lookupXenEndpoint, xenPeerFor, regionPool,
} from '../../dist/index.js';

const require = createRequire(import.meta.url);
const native = require('../../native/build/Release/xway_native.node');
const FIXTURE = new URL('./fixtures/peer.js', import.meta.url).pathname;
const PERMIT = new URL('../../scripts/xen-permit.sh', import.meta.url).pathname;

function within(ms, promise, what) {
  let timer;
  return Promise.race([promise.finally(() => clearTimeout(timer)),
    new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(`${what}: nothing within ${ms} ms`)), ms); })]);
}

/** Resolves with the first channel end the listener hands over. */
function listenOnce(port, options = {}) {
  let give;
  const got = new Promise((resolve) => { give = resolve; });
  const listener = listenXen(port, { capacity: 16384, ...options }, (end) => give(end));
  return { listener, accepted: got };
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
  });
}

function startPeer(args) {
  const child = spawn(process.execPath, [FIXTURE, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  const lines = [];
  let waiter = null;
  createInterface({ input: child.stdout }).on('line', (line) => {
    lines.push(JSON.parse(line));
    waiter?.();
  });
  child.next = (event) => within(20000, new Promise((resolve) => {
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

test('the Xen platform is available and knows its domain', () => {
  assert.is(xenUnavailableReason(), null);
  assert.is(xenSelfDomid(), 0);
});

test('a channel set up through XenStore carries data both ways', async () => {
  const { listener, accepted } = listenOnce(7001);
  const ends = [];
  try {
    const ep = lookupXenEndpoint(0, 7001);
    assert.equal({ domid: ep.domid, port: ep.port, path: ep.path }, { domid: 0, port: 7001, path: '/local/domain/0/data/xway/7001' });
    assert.is(lookupXenEndpoint(0, 7002), null);
    const client = await within(10000, connectXen(0, 7001, { capacity: 16384 }), 'connectXen');
    const server = await within(10000, accepted, 'accept');
    ends.push(client, server);
    assert.is(client.platform, 'xen');
    assert.equal(client.peer, { domid: 0 });
    assert.equal(server.peer, { domid: 0 });
    // Different slots of one memory, the same pages underneath.
    assert.is.not(client.channel.offset, server.channel.offset);
    const up = randomBytes(300_000);
    const down = randomBytes(200_000);
    const [gotUp, gotDown] = await within(30000, Promise.all([transfer(client, server, up), transfer(server, client, down)]), 'transfer');
    assert.ok(gotUp.equals(up), 'client -> server bytes intact');
    assert.ok(gotDown.equals(down), 'server -> client bytes intact');
    // The offer was withdrawn after acceptance.
    const xs = new native.XenStore(() => {});
    assert.equal(xs.directory('/local/domain/0/data/xway/7001/offers'), []);
    xs.close();
    // Clean ends on both sides, then the client leaves: nothing is reset, nobody reports a loss.
    let lost = null;
    server.onpeergone = (r) => { lost = r; };
    client.channel.tx.end();
    client.notify();
    server.channel.tx.end();
    server.notify();
    await new Promise((r) => setTimeout(r, 100));
    assert.ok(server.channel.rx.ended, 'server saw the client end its stream');
    assert.ok(client.channel.rx.ended, 'client saw the server end its stream');
    client.close();
    await new Promise((r) => setTimeout(r, 200));
    assert.is(lost, null);
    assert.not.ok(server.channel.rx.isReset || server.channel.tx.isReset, 'an orderly close resets nothing');
    server.close();
    assert.ok(poolIsEmpty(), 'every slot returned to the pool');
  } finally {
    for (const end of ends) end.close();
    listener.close();
  }
  const xs = new native.XenStore(() => {});
  assert.is(xs.read('/local/domain/0/data/xway/7001/version'), null, 'closing the listener removed the endpoint');
  xs.close();
});

test('a peer that closes is noticed through the unmap notification, as TCP reports its close', async () => {
  const { listener, accepted } = listenOnce(7003);
  try {
    // Closing without having ended the stream is TCP's close(): FIN after what was written (no
    // reset: nothing sent to the client was left unread). The server learns that the client is
    // gone only from the unmap notification (its liveness byte cleared, its port signalled).
    const client = await within(10000, connectXen(0, 7003, { capacity: 16384 }), 'connectXen');
    const server = await accepted;
    let lost = null;
    server.onpeergone = (r) => { lost = r; };
    const gone = new Promise((resolve) => { server.onwake = () => { if (server.peerGone) resolve(); }; });
    client.channel.tx.write(Buffer.from('partial'));
    client.close(); // FIN, then unmaps the client's grants
    await within(5000, gone, 'peer loss');
    assert.not.ok(server.peerAlive, 'the liveness byte was cleared');
    assert.is(lost, null, 'a peer that closed is not reported as lost');
    assert.not.ok(server.channel.rx.isReset || server.channel.tx.isReset, 'an orderly close resets nothing');
    assert.is(server.channel.rx.read()?.toString(), 'partial');
    assert.ok(server.channel.rx.ended, 'then end of stream');
    server.close();
    assert.ok(poolIsEmpty());
  } finally {
    listener.close();
  }
});

test('a peer that closes with bytes left unread resets the channel', async () => {
  const { listener, accepted } = listenOnce(7011);
  try {
    const client = await within(10000, connectXen(0, 7011, { capacity: 16384 }), 'connectXen');
    const server = await accepted;
    server.channel.tx.write(Buffer.from('never read'));
    server.notify();
    await new Promise((r) => setTimeout(r, 100));
    const gone = new Promise((resolve) => { server.onwake = () => { if (server.peerGone) resolve(); }; });
    client.close(); // RST: bytes it never read
    await within(5000, gone, 'peer loss');
    assert.ok(server.channel.rx.isReset || server.channel.tx.isReset, 'the channel was reset');
    server.close();
    assert.ok(poolIsEmpty());
  } finally {
    listener.close();
  }
});

test('a client process killed with SIGKILL is noticed by the server', async () => {
  const { listener, accepted } = listenOnce(7004);
  const child = startPeer(['connect', '0', '7004']);
  try {
    const server = await within(20000, accepted, 'accept from child');
    await child.next('connected');
    const hello = await within(5000, new Promise((resolve) => {
      const look = () => { const b = server.channel.rx.read(); if (b) resolve(b.toString()); };
      server.onwake = look;
      look();
    }), 'hello');
    assert.is(hello, 'hello from the child');
    server.onwake = null;
    const gone = new Promise((resolve) => { server.onpeergone = resolve; });
    child.kill('SIGKILL');
    await child.exited;
    const reason = await within(5000, gone, 'peer loss after SIGKILL');
    assert.type(reason, 'string');
    server.close();
  } finally {
    child.kill('SIGKILL');
    listener.close();
  }
});

test('a server process killed with SIGKILL is noticed by the client', async () => {
  const child = startPeer(['listen', '7005']);
  try {
    await child.next('listening');
    const client = await within(20000, connectXen(0, 7005, { capacity: 16384 }), 'connect to child');
    await child.next('channel');
    const gone = new Promise((resolve) => { client.onpeergone = resolve; });
    child.kill('SIGKILL');
    await child.exited;
    await within(5000, gone, 'server loss after SIGKILL');
    // Its kernel would have closed its socket: FIN, since it left nothing of ours unread.
    assert.not.ok(client.channel.rx.isReset || client.channel.tx.isReset, 'nothing was reset');
    assert.ok(client.channel.rx.ended, 'end of stream');
    client.close();
    assert.ok(poolIsEmpty());
  } finally {
    child.kill('SIGKILL');
  }
});

test('malformed or hostile offers are refused, and leave nothing behind', async () => {
  const refusals = [];
  const { listener } = listenOnce(7006, { onRefused: (reason, text, client) => refusals.push({ reason, text, client }) });
  const xs = new native.XenStore(() => {});
  const offers = '/local/domain/0/data/xway/7006/offers';
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
      await new Promise((r) => setTimeout(r, 20));
    }
    return 'no answer';
  };
  const good = {
    'capacity-a': '16384', 'capacity-b': '16384', pages: '9', 'event-port': '5', 'grefs/0': '1,2,3,4,5,6,7,8,9',
    target: '192.0.2.1', source: '192.0.2.2',
  };
  try {
    offer('0-cap', { ...good, 'capacity-a': '12345' });
    assert.match(await answer('0-cap'), /^refused:capacity /);
    offer('0-big', { ...good, 'capacity-a': String(1 << 26) });
    assert.match(await answer('0-big'), /^refused:capacity /);
    offer('0-pages', { ...good, pages: '8' });
    assert.match(await answer('0-pages'), /^refused:malformed /);
    offer('0-grefs', { ...good, 'grefs/0': '1,2,3,x' });
    assert.match(await answer('0-grefs'), /^refused:malformed /);
    offer('0-many', { ...good, 'grefs/0': '1,2,3,4,5,6,7,8,9,10' });
    assert.match(await answer('0-many'), /^refused:malformed /);
    offer('0-num', { ...good, 'event-port': '05' });
    assert.match(await answer('0-num'), /^refused:malformed /);
    offer('0-route', { ...good, source: 'nowhere' });
    assert.match(await answer('0-route'), /^refused:malformed .*not an IP address/);
    offer('7-spoof', good); // created by domain 0, claims to be domain 7
    assert.match(await answer('7-spoof'), /^refused:malformed .*created by domain 0/);
    // Well-formed but the references and port are not a real offer: the hypervisor says no.
    const e = new native.XenEventChannel(() => {});
    const port = e.bindUnbound(0);
    offer('0-fake', { ...good, 'event-port': String(port), 'grefs/0': '900001,900002,900003,900004,900005,900006,900007,900008,900009' });
    assert.match(await answer('0-fake'), /^refused:internal /);
    e.close();
    assert.is(refusals.length, 9);
    assert.ok(refusals.every((r) => r.client === 0));
    assert.ok(poolIsEmpty(), 'nothing mapped for refused offers');
  } finally {
    xs.rm(offers);
    xs.close();
    listener.close();
  }
});

test('connectXen fails cleanly: no endpoint, and capacity above the endpoint maximum', async () => {
  let err;
  try { await connectXen(0, 7999); } catch (e) { err = e; }
  assert.is(err?.code, 'ERR_XWAY_SETUP');
  const { listener } = listenOnce(7007, { maxCapacity: 16384 });
  err = undefined;
  try { await connectXen(0, 7007, { capacity: 65536 }); } catch (e) { err = e; }
  listener.close();
  assert.is(err?.code, 'ERR_XWAY_SETUP');
  assert.match(err.message, /exceeds/);
  assert.ok(poolIsEmpty());
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

test('a process exits by itself once its listener and channels are closed', async () => {
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

test('a worker thread that exits with a Xen listener and channel open leaves no descriptors', async () => {
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
  await new Promise((r) => setTimeout(r, 200));
  assert.is(fds(), before);
  // XenStore is consistent again for the next user of the port.
  const xs = new native.XenStore(() => {});
  const offers = xs.directory('/local/domain/0/data/xway/7010/offers');
  xs.rm('/local/domain/0/data/xway/7010'); // the worker never closed its listener
  xs.close();
  assert.equal(offers, []);
});

test.run();
