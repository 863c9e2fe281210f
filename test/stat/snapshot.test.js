// snapshotHost(): a real server process and a real connection to it appear with their real ring
// counters; the observer changes nothing; closed connections and dead processes' tables go away.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { once } from 'node:events';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import xway, { snapshotHost } from '../../dist/index.js';
import { within, waitFor, sleep, useTempRegistry, startXwayPeer } from '../host/helpers.js';
import { ownNamespaces } from '../../dist/switch/namespace.js';

const XWAY_DIR = useTempRegistry(test, 'xstat-');

test('a live connection to a server process is listed with its endpoint, pids and byte counters', async () => {
  const { child, listening } = startXwayPeer('echo');
  try {
    const { port, pid } = await within(10_000, listening, 'server listening');
    const socket = xway.connect({ port, host: '127.0.0.1', transport: 'force', ringCapacity: 64 * 1024 });
    await within(5000, once(socket, 'connect'), 'connect');
    const payload = Buffer.alloc(100_000, 7);
    let echoed = 0;
    socket.on('data', (d) => (echoed += d.length));
    socket.write(payload);
    await waitFor(() => echoed === payload.length, 10_000, 'echo');

    // Published, and quiet: both readers have stopped polling and announced their wait (a
    // reader polls its ring for a while after the last bytes before it sleeps).
    let c;
    await waitFor(() => {
      c = snapshotHost().connections.find((x) => x.port === port);
      return c !== undefined && c.clientToServer.consumerWaiting && c.serverToClient.consumerWaiting;
    }, 3000, 'the connection is published and idle');
    const snap = snapshotHost();
    assert.ok(snap.endpoints.some((e) => e.port === port && e.pid === pid), 'endpoint listed');
    assert.is(c.serverPid, pid);
    assert.is(c.clientPid, process.pid);
    assert.is(c.platform, 'host');
    assert.is(c.state, 'open');
    assert.is(c.clientToServer.capacity, 64 * 1024);
    assert.is(c.clientToServer.bytesIn, BigInt(payload.length));
    assert.is(c.serverToClient.bytesOut, BigInt(payload.length));
    assert.is(c.clientToServer.used, 0);

    // Observing is passive: the rings' counters are the same before and after many snapshots.
    const before = JSON.stringify(c, (k, v) => (typeof v === 'bigint' ? String(v) : v));
    for (let i = 0; i < 50; i++) snapshotHost();
    const after = snapshotHost().connections.find((x) => x.id === c.id);
    assert.is(JSON.stringify(after, (k, v) => (typeof v === 'bigint' ? String(v) : v)), before);

    socket.end();
    await within(5000, once(socket, 'close'), 'close');
    await waitFor(() => !snapshotHost().connections.some((x) => x.id === c.id), 3000, 'the closed connection leaves the table');
  } finally {
    child.kill('SIGKILL');
    await once(child, 'exit').catch(() => {});
  }
});

test('a dead process\'s table is removed; rows that do not describe a segment are skipped', async () => {
  // A table left by a process that no longer runs (pid 1's start time will not match 1).
  const stale = path.join(XWAY_DIR, `channels-999999-1-0-${ownNamespaces().pidns || '0'}.json`);
  fs.writeFileSync(stale, JSON.stringify({ version: 1, pid: 999999, startTime: 1, channels: [] }), { mode: 0o600 });
  // A table of this (live) process whose row points at a descriptor that is no segment.
  const { ownIdentity } = await import('../../dist/switch/registry.js');
  const me = ownIdentity();
  const bogus = path.join(XWAY_DIR, `channels-${me.pid}-${me.startTime}-4242-${ownNamespaces().pidns || '0'}.json`);
  const fd = fs.openSync(stale, 'r');
  fs.writeFileSync(bogus, JSON.stringify({ version: 1, pid: me.pid, startTime: me.startTime, channels: [
    { id: 'x', platform: 'host', port: 1, clientPid: 1, since: 0, fd, ino: fs.fstatSync(fd).ino, size: 1 << 20, capacityA: 4096, capacityB: 4096, offsetA: 256, offsetB: 4608 },
    { id: 'y', platform: 'host', port: 1, clientPid: 1, since: 0, fd: 0, ino: 1, size: -5, capacityA: 3, capacityB: 4096, offsetA: 256, offsetB: 4608 },
  ] }), { mode: 0o600 });
  try {
    const snap = snapshotHost();
    assert.not.ok(fs.existsSync(stale), 'the dead process\'s table is gone');
    assert.not.ok(snap.connections.some((c) => c.id === 'x' || c.id === 'y'), 'bogus rows skipped');
  } finally {
    fs.closeSync(fd);
    fs.rmSync(bogus, { force: true });
  }
});

test.run();
