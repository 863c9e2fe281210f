// Containers A and B: separate network, PID, mount, UTS and IPC namespaces, joined by a bridge
// (192.0.2.101 and .102), sharing one registry directory (a tmpfs at /run/xway in both). A server in
// A listening on 0.0.0.0 and a client in B connecting to A's address must meet on a ring, see the
// addresses TCP would show, carry 64 MiB each way intact, and be visible to `xway stat` in either
// container; an unmodified http pair under the preload must ride a ring too.
import * as assert from 'uvu/assert';
import { labSuite, unavailable, addresses, debugLines, tcpReason } from './common.js';
import { createLab, PRELOAD } from './netns.js';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const FIXTURES = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures');
const { s, test } = labSuite('containers: a ring from namespace B to a server in namespace A');

let lab, a, b, A, B;
s.before(async () => {
  if (unavailable) return; // the tests are skipped, with the reason
  lab = createLab({ containers: { a: {}, b: {} } });
  A = lab.containers.a;
  B = lab.containers.b;
  a = await lab.agent('a', { env: { XWAY_DEBUG: '1' } });
  b = await lab.agent('b', { env: { XWAY_DEBUG: '1' } });
});
s.after(async () => { await lab?.close(); });

/** Connects from B to A:port (xway, transport auto) and waits for A's side of it. */
async function connectBA(port, options = {}) {
  const client = await b.ask('connect', { host: A.address, port, ...options });
  assert.not.ok(client.error, `connect from B to ${A.address}:${port} failed: ${JSON.stringify(client.error)}`);
  const server = await a.event('connection', (e) => e.server === port && e.remotePort === client.localPort);
  return { client, server };
}

function assertRing(client, server, port) {
  const why = tcpReason(b.stderr, A.address, port);
  assert.equal({ client: client.transport, server: server.transport }, { client: 'ring', server: 'ring' },
    `the connection from B to ${A.address}:${port} should ride a ring in both containers${why ? `; the client took TCP because: ${why}` : ''}`);
}

test('a server in A on 0.0.0.0 and a client in B connecting to A\'s address meet on a ring, with the addresses TCP shows', async () => {
  await a.ask('listen', { port: 7101, host: '0.0.0.0' });
  // The reference: the same connection over TCP (the client's transport off).
  const tcp = await connectBA(7101, { transport: 'off' });
  assert.is(tcp.client.transport, 'tcp');
  const ring = await connectBA(7101);
  assertRing(ring.client, ring.server, 7101);
  // What TCP shows across the veth pair: the client is at its own address, the server at A's.
  const expect = (v, ref) => ({ ...addresses(ref), localPort: v.localPort, remotePort: v.remotePort });
  assert.equal(addresses(ring.client), expect(ring.client, tcp.client), 'the client\'s addresses are what TCP showed');
  assert.equal(addresses(ring.server), expect(ring.server, tcp.server), 'the server\'s addresses are what TCP showed');
  assert.is(ring.client.localAddress, B.address);
  assert.is(ring.server.remoteAddress, B.address);
  assert.is(ring.client.remotePort, 7101);
  assert.is(ring.server.remotePort, ring.client.localPort, 'both ends agree on the client\'s port');
  await b.ask('destroy', { conn: tcp.client.conn });
  await b.ask('destroy', { conn: ring.client.conn });
});

test('64 MiB each way (an echo) arrive intact over the ring between the namespaces', async () => {
  await a.ask('listen', { port: 7102, host: '0.0.0.0' });
  const { client, server } = await connectBA(7102);
  assertRing(client, server, 7102);
  const bytes = 64 << 20;
  const r = await b.ask('transfer', { conn: client.conn, bytes }, 90_000);
  const served = await a.event('served', (e) => e.conn === server.conn, 30_000);
  assert.equal(r.errors, []);
  assert.is(served.bytes, bytes, 'the server got every byte');
  assert.is(served.sha, r.sentSha, 'the server got what the client sent (SHA-256)');
  assert.is(r.receivedBytes, bytes, 'the client got every byte back');
  assert.is(r.receivedSha, r.sentSha, 'the client got back what it sent (SHA-256)');
});

test('xway stat in A and in B lists the ring connection and the endpoint', async () => {
  await a.ask('listen', { port: 7103, host: '0.0.0.0' });
  const { client, server } = await connectBA(7103);
  assertRing(client, server, 7103);
  for (const [name, agent] of [['A', a], ['B', b]]) {
    const stat = await agent.ask('stat');
    assert.ok(stat.json, `xway stat --json in ${name} printed JSON: ${stat.jsonRaw.stdout}${stat.jsonRaw.stderr}`);
    assert.ok(stat.json.endpoints.some((e) => e.port === 7103), `xway stat in ${name} lists the endpoint on port 7103: ${JSON.stringify(stat.json.endpoints)}`);
    const conn = stat.json.connections.find((c) => c.port === 7103);
    assert.ok(conn, `xway stat in ${name} lists the ring connection to port 7103: ${JSON.stringify(stat.json.connections)}`);
    assert.is(conn.state, 'open');
  }
  await b.ask('destroy', { conn: client.conn });
});

test('xway stat shows each endpoint\'s and connection\'s network namespace and container name beside the pid', async () => {
  await a.ask('listen', { port: 7104, host: '0.0.0.0' });
  const { client, server } = await connectBA(7104);
  assertRing(client, server, 7104);
  for (const [name, agent] of [['A', a], ['B', b]]) {
    const stat = await agent.ask('stat');
    const endpoint = stat.json?.endpoints.find((e) => e.port === 7104);
    assert.ok(endpoint, `xway stat in ${name} lists the endpoint on port 7104`);
    // Field names are the implementation's; the values are the kernel's: the inode of A's
    // /proc/self/ns/net, and A's container name (here its host name, set in its UTS namespace).
    const text = JSON.stringify(endpoint);
    assert.ok(text.includes(String(A.inode)), `the endpoint (from ${name}) names A's network namespace (inode ${A.inode}): ${text}`);
    assert.ok(text.includes(A.hostname), `the endpoint (from ${name}) names A's container (${A.hostname}): ${text}`);
    const conn = stat.json.connections.find((c) => c.port === 7104);
    assert.ok(conn, `xway stat in ${name} lists the connection`);
    const row = JSON.stringify(conn);
    assert.ok(row.includes(String(A.inode)) && row.includes(A.hostname), `the connection (from ${name}) names the server's namespace and container: ${row}`);
    assert.ok(row.includes(String(B.inode)) && row.includes(B.hostname), `the connection (from ${name}) names the client's namespace and container: ${row}`);
    // The table shows them too.
    const lines = stat.text.split('\n');
    assert.ok(lines.some((l) => /\b7104\b/.test(l) && l.includes(A.hostname)), `the text of xway stat in ${name} shows A's container name beside the endpoint:\n${stat.text}`);
    assert.ok(stat.text.includes(String(A.inode)), `the text of xway stat in ${name} shows A's namespace:\n${stat.text}`);
  }
  await b.ask('destroy', { conn: client.conn });
});

test('a client in B connecting to A by name (<name>.lab, as Compose resolves service names) rides a ring too', async () => {
  await a.ask('listen', { port: 7106, host: '0.0.0.0' });
  const client = await b.ask('connect', { host: 'a.lab', port: 7106 });
  assert.not.ok(client.error, `connect from B to a.lab:7106: ${JSON.stringify(client.error)}`);
  assert.is(client.remoteAddress, A.address, 'the name resolved to A\'s address');
  const server = await a.event('connection', (e) => e.server === 7106 && e.remotePort === client.localPort);
  const why = tcpReason(b.stderr, 'a.lab', 7106);
  assert.equal({ client: client.transport, server: server.transport }, { client: 'ring', server: 'ring' },
    `the connection to a.lab:7106 rides a ring${why ? `; the client took TCP because: ${why}` : ''}`);
  assert.is(client.localAddress, B.address);
  await b.ask('destroy', { conn: client.conn });
});

test('an unmodified http server in A and client in B, both under the preload, work over rings', async () => {
  const env = { XWAY_DEBUG: '1' };
  const server = lab.start('a', path.join(FIXTURES, 'http-server.mjs'), { nodeArgs: ['--import', PRELOAD], args: ['7105'], env });
  try {
    await server.line((l) => l.includes('listening'));
    const client = lab.start('b', path.join(FIXTURES, 'http-client.mjs'), { nodeArgs: ['--import', PRELOAD], args: [A.address, '7105'], env });
    const out = JSON.parse(await client.line((l) => l.startsWith('{'), 60_000));
    const status = await client.exited;
    assert.equal(status, { code: 0, signal: null }, `the client exits cleanly: ${client.stderr}`);
    assert.equal(out.seq, [0, 1, 2].map((i) => `200 ${A.hostname} /seq/${i} from ${B.address}`));
    assert.equal(out.par, [0, 1, 2, 3, 4, 5].map((i) => `200 ${A.hostname} /par/${i} from ${B.address}`));
    assert.equal(JSON.parse(out.post.got.slice(4)), { n: 8 << 20, sha: out.post.sent });
    assert.is(out.fetch, `200 ${A.hostname} /fetch from ${B.address}`);
    // XWAY_DEBUG: every connection the client made rode a ring, and the server accepted rings.
    const lines = debugLines(client.stderr, A.address, 7105).filter((l) => l.includes(' -> '));
    assert.equal(lines.filter((l) => l.includes('-> tcp')), [], 'no connection from the http client took TCP');
    assert.ok(lines.some((l) => l.includes('-> ring')),
      `the client's preload reports connections to ${A.address}:7105 riding a ring (XWAY_DEBUG); it said:\n${client.stderr || '(nothing: it took TCP without looking for an endpoint)'}`);
    assert.ok(/<- ring/.test(server.stderr), `the server accepted ring connections:\n${server.stderr}`);
  } finally {
    await server.kill();
  }
});

s.run();
