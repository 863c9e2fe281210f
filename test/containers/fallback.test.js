// Where no ring can be had across namespaces, the connection is plain TCP and works: a client
// that does not share the registry, one whose registry is its own default directory, one that
// connects to a port nobody registered. And a ring never reaches what TCP could not: a server in A
// bound to 127.0.0.1 is not reachable from B. Within one namespace everything is as before.
import * as assert from 'uvu/assert';
import { labSuite, unavailable, tcpReason } from './common.js';
import { createLab } from './netns.js';

const { s, test } = labSuite('containers: TCP wherever no ring can be had');

let lab, a, b, c, A;
s.before(async () => {
  if (unavailable) return;
  lab = createLab({ containers: { a: {}, b: {}, c: { shared: false } } });
  A = lab.containers.a;
  a = await lab.agent('a', { env: { XWAY_DEBUG: '1' } });
  b = await lab.agent('b', { env: { XWAY_DEBUG: '1' } });
  c = await lab.agent('c', { env: { XWAY_DEBUG: '1' } });
  await a.ask('listen', { port: 7201, host: '0.0.0.0' }); // an xway echo server
});
s.after(async () => { await lab?.close(); });

/** Connects from `agent` to A:port, echoes 1 MiB, and returns the client's view. */
async function echoOver(agent, port, options = {}) {
  const client = await agent.ask('connect', { host: A.address, port, ...options });
  assert.not.ok(client.error, `connect to ${A.address}:${port}: ${JSON.stringify(client.error)}`);
  const r = await agent.ask('transfer', { conn: client.conn, bytes: 1 << 20 });
  assert.is(r.receivedBytes, 1 << 20, 'the echo came back whole');
  assert.is(r.receivedSha, r.sentSha, 'the echo came back intact');
  const server = await a.event('served', (e) => e.remotePort === client.localPort && e.remoteAddress === client.localAddress);
  return { client, server };
}

test('a client in C, which does not share the registry directory, uses TCP to the server in A, and it works', async () => {
  const { client, server } = await echoOver(c, 7201);
  assert.is(client.transport, 'tcp');
  assert.is(server.transport, 'tcp');
  assert.is(client.localAddress, lab.containers.c.address);
});

test('a client in B with no XWAY_DIR (its default registry is in its own /tmp) uses TCP, and it works', async () => {
  const own = await lab.agent('b', { env: { XWAY_DEBUG: '1', XWAY_DIR: null } });
  try {
    const { client, server } = await echoOver(own, 7201);
    assert.is(client.transport, 'tcp');
    assert.is(server.transport, 'tcp');
  } finally {
    await own.kill();
  }
});

test('a client in B (sharing the registry) to a port nobody registered uses TCP, and it works', async () => {
  await a.ask('listen', { api: 'net', port: 7202, host: '0.0.0.0' }); // plain node:net: no entry
  const { client, server } = await echoOver(b, 7202);
  assert.is(client.transport, 'tcp');
  assert.is(server.transport, 'tcp');
});

test('an xway server in A bound to 127.0.0.1 is not reached from B: ECONNREFUSED, as over TCP', async () => {
  await a.ask('listen', { port: 7203, host: '127.0.0.1' });
  const tcp = await b.ask('connect', { host: A.address, port: 7203, transport: 'off' });
  assert.is(tcp.error?.code, 'ECONNREFUSED', 'the TCP reference is refused');
  const auto = await b.ask('connect', { host: A.address, port: 7203 });
  assert.is(auto.error?.code, tcp.error.code, `xway's connect is refused as TCP's is: ${JSON.stringify(auto)}`);
  assert.equal(auto.log.map(([what]) => what), tcp.log.map(([what]) => what), 'the same events as over TCP');
});

test('within A, a client connecting to 127.0.0.1 of the server in A still rides a ring', async () => {
  const client = await a.ask('connect', { host: '127.0.0.1', port: 7201 });
  assert.not.ok(client.error, JSON.stringify(client.error));
  const server = await a.event('connection', (e) => e.server === 7201 && e.remotePort === client.localPort);
  assert.is(client.transport, 'ring', `a ring within one namespace: ${tcpReason(a.stderr, '127.0.0.1', 7201)}`);
  assert.is(server.transport, 'ring');
  assert.is(client.localAddress, '127.0.0.1');
  await a.ask('destroy', { conn: client.conn });
});

s.run();
