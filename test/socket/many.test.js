// 1,000 concurrent ring connections from this process to one server process, each echoing a few
// KiB, with the memory each connection costs reported; ring sizes chosen by the server (published
// in its registry entry) and overridden per connection.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { once } from 'node:events';
import fs from 'node:fs';
import xway from '../../dist/index.js';
import { within, useTempRegistry, startXwayPeer } from '../host/helpers.js';

useTempRegistry(test, 'xmany-');
const KiB = 1024;
const CONNECTIONS = 1000;
const BATCH = 50; // set-ups in flight at once (the listener refuses more than 64 as busy)
/** Resident memory of a process, in KiB: all of it, and the part that is shared memory. */
function memory(pid) {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = (key) => Number(status.match(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm'))?.[1] ?? NaN);
  return { rss: kib('VmRSS'), shmem: kib('RssShmem') };
}

const connect = (port, options) => new Promise((resolve, reject) => {
  const socket = xway.connect({ port, host: '127.0.0.1', transport: 'force', ...options });
  socket.once('connect', () => resolve(socket)).once('error', reject);
});

const echo = (socket, payload) => new Promise((resolve, reject) => {
  const parts = [];
  let got = 0;
  const onData = (d) => {
    parts.push(d);
    got += d.length;
    if (got >= payload.length) {
      socket.off('data', onData);
      resolve(Buffer.concat(parts));
    }
  };
  socket.on('data', onData).once('error', reject);
  socket.write(payload);
});

test(`${CONNECTIONS} concurrent connections to one server process, each echoing 4 KiB, every byte checked`, async () => {
  const { child, listening } = startXwayPeer('echo', 16 * KiB);
  const sockets = [];
  try {
    const { port, pid } = await within(10_000, listening, 'server listening');
    const before = { client: memory(process.pid), server: memory(pid) };
    const t0 = Date.now();
    for (let i = 0; i < CONNECTIONS; i += BATCH) {
      const batch = await within(30_000, Promise.all(Array.from({ length: Math.min(BATCH, CONNECTIONS - i) }, () => connect(port))), `connections ${i}..`);
      sockets.push(...batch);
    }
    const setupMs = Date.now() - t0;
    assert.is(sockets.length, CONNECTIONS);
    for (const s of sockets) {
      assert.is(s.transport, 'ring');
      assert.is(s.channel.tx.capacity, 16 * KiB, "the server's published ring size");
    }
    const payloads = sockets.map((_, i) => Buffer.alloc(4 * KiB, i & 0xff).fill(i >> 8, 0, 2));
    const echoed = await within(60_000, Promise.all(sockets.map((s, i) => echo(s, payloads[i]))), 'all echoes');
    echoed.forEach((e, i) => assert.ok(e.equals(payloads[i]), `connection ${i} echoed its own bytes`));
    const after = { client: memory(process.pid), server: memory(pid) };
    const per = (side, key) => ((after[side][key] - before[side][key]) / CONNECTIONS).toFixed(1);
    const segment = sockets[0].channel.capacityA + sockets[0].channel.capacityB + 768;
    console.log(`  ${CONNECTIONS} ring connections set up in ${setupMs} ms; per connection: client RSS +${per('client', 'rss')} KiB (shared ${per('client', 'shmem')}), server RSS +${per('server', 'rss')} KiB (shared ${per('server', 'shmem')}); channel ${(segment / KiB).toFixed(1)} KiB in a 64 KiB segment`);
    assert.ok(after.server.rss > before.server.rss, 'the server holds the connections');
  } finally {
    await Promise.all(sockets.map((s) => { s.destroy(); return once(s, 'close'); }));
    child.kill('SIGKILL');
    await once(child, 'exit').catch(() => {});
  }
});

test('a connection can ask for its own ring size, within the server\'s maximum', async () => {
  const { child, listening } = startXwayPeer('echo', 16 * KiB);
  try {
    const { port } = await within(10_000, listening, 'server listening');
    const big = await connect(port, { ringCapacity: 1024 * KiB });
    assert.is(big.channel.tx.capacity, 1024 * KiB);
    const payload = Buffer.alloc(3 * 1024 * KiB, 9);
    assert.ok((await within(10_000, echo(big, payload), 'echo')).equals(payload));
    big.destroy();
    // Beyond the server's maximum (16 MiB by default) the server refuses, and force says so.
    const refused = await connect(port, { ringCapacity: 32 * 1024 * KiB }).then(() => null, (err) => err);
    assert.is(refused?.code, 'ERR_XWAY_NO_RING');
    assert.match(refused.message, /capacity/);
  } finally {
    child.kill('SIGKILL');
    await once(child, 'exit').catch(() => {});
  }
});

test.run();
