// The XWAY switch across Xen domains, on real Xen (inside dom0, run by test/xen/run.sh): a server
// made with xway.createServer publishes a Xen endpoint beside its host one; a client that connects
// to an address the administrator recorded for a domain (scripts/xen-permit.sh) gets a Xen
// channel, and falls back to TCP when that domain has no endpoint for the port. Here dom0 plays
// both domains (a domain may grant pages to itself).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { once } from 'node:events';
import xway, { snapshotHost } from '../../dist/index.js';

const PERMIT = new URL('../../scripts/xen-permit.sh', import.meta.url).pathname;
const ADDRESS = '192.0.2.9'; // not an address of this machine: only the Xen record leads to dom0

function within(ms, promise, what) {
  let timer;
  return Promise.race([promise.finally(() => clearTimeout(timer)),
    new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(`${what}: nothing within ${ms} ms (active: ${process.getActiveResourcesInfo().join(', ')})`)), ms); })]);
}

test.before(() => { execFileSync('sh', [PERMIT, `0=${ADDRESS}`], { encoding: 'utf8' }); });
test.after(() => { execFileSync('sh', [PERMIT, '--revoke', '0']); });

test('connect to a recorded domain address rides a Xen channel through the net API, every byte checked', async () => {
  const server = xway.createServer((socket) => { socket.on('error', () => {}); socket.pipe(socket); });
  server.listen(0, '0.0.0.0');
  await within(10_000, once(server, 'listening'), 'listening');
  const { port } = server.address();
  try {
    const socket = xway.connect({ port, host: ADDRESS, transport: 'force' });
    await within(10_000, once(socket, 'connect'), 'connect');
    assert.is(socket.transport, 'ring');
    assert.is(socket.platform, 'xen');
    assert.is(socket.remoteAddress, ADDRESS);
    const payload = Buffer.alloc(1 << 20);
    for (let i = 0; i < payload.length; i++) payload[i] = (i * 31) & 0xff;
    const parts = [];
    socket.on('data', (d) => parts.push(d));
    const closed = once(socket, 'close'); // it may follow 'end' before an await after it resumes
    socket.write(payload);
    await within(30_000, (async () => { while (parts.reduce((n, p) => n + p.length, 0) < payload.length) await new Promise((r) => setTimeout(r, 5)); })(), 'echo');
    // xway stat sees the channel: the server copies its counters into its table (Xen pages
    // cannot be opened by an observer), with the client's domain in place of a pid.
    let seen;
    await within(5000, (async () => {
      for (;;) {
        seen = snapshotHost().connections.find((c) => c.port === port && c.platform === 'xen');
        if (seen && seen.clientToServer.bytesIn >= BigInt(payload.length)) return;
        await new Promise((r) => setTimeout(r, 50));
      }
    })(), 'the Xen channel in snapshotHost()');
    assert.is(seen.clientPid, 0, 'the client domain');
    assert.is(seen.serverToClient.bytesOut, BigInt(payload.length));
    socket.end();
    await within(30_000, once(socket, 'end'), 'end');
    assert.ok(Buffer.concat(parts).equals(payload), 'echoed bytes');
    await within(5000, closed, 'close');
  } finally {
    await within(10_000, new Promise((resolve) => server.close(resolve)), "the server's close");
  }
});

test('a recorded domain without an endpoint for the port: auto falls back to TCP, force says why', async () => {
  const auto = xway.connect({ port: 1, host: ADDRESS });
  const [err] = await within(30_000, once(auto, 'error'), 'the TCP attempt fails');
  assert.not.equal(err.code, 'ERR_XWAY_NO_RING', 'auto does not insist on a ring');
  const forced = xway.connect({ port: 1, host: ADDRESS, transport: 'force' });
  const [why] = await within(5000, once(forced, 'error'), 'forced');
  assert.is(why.code, 'ERR_XWAY_NO_RING');
  assert.match(why.message, /Xen domain/);
});

test.run();
