// Two servers on the same port, in containers A and B, sharing one registry: entries are keyed by
// (namespace, address, port), so each is found at its own address from a third container C, and
// each from its own container over loopback — never the other. SIGKILL of A's server leaves a
// stale entry that is recognised and removed by whoever finds it; B's entry stays and B still
// serves rings.
import * as assert from 'uvu/assert';
import { labSuite, unavailable, tcpReason } from './common.js';
import { createLab } from './netns.js';

const { s, test } = labSuite('containers: two servers on one port in two namespaces');
const PORT = 7301;

let lab, a, b, c, filesOfA, filesOfB;
s.before(async () => {
  if (unavailable) return;
  lab = createLab({ containers: { a: {}, b: {}, c: {} } });
  a = await lab.agent('a', { env: { XWAY_DEBUG: '1' } });
  b = await lab.agent('b', { env: { XWAY_DEBUG: '1' } });
  c = await lab.agent('c', { env: { XWAY_DEBUG: '1' } });
  // The files each server adds to the shared registry when it starts listening (name@inode: a
  // file replaced under the same name is another file).
  const before = new Set(files().keys());
  await a.ask('listen', { port: PORT, host: '0.0.0.0', mode: 'name' });
  filesOfA = [...files().keys()].filter((n) => !before.has(n));
  const withA = new Set(files().keys());
  await b.ask('listen', { port: PORT, host: '0.0.0.0', mode: 'name' });
  filesOfB = [...files().keys()].filter((n) => !withA.has(n));
});
s.after(async () => { await lab?.close(); });

const files = () => new Map([...lab.registryFiles()].map(([name, st]) => [`${name}@${st.ino}`, st]));

/** Connects `agent` to host:PORT; returns the server's name and both transports. */
async function ask(agent, server, host) {
  const client = await agent.ask('connect', { host, port: PORT });
  assert.not.ok(client.error, `connect to ${host}:${PORT} from ${agent.container.name}: ${JSON.stringify(client.error)}`);
  const name = await agent.ask('readLine', { conn: client.conn, timeoutMs: 3000 });
  const accepted = server.events.find((e) => e.event === 'connection' && e.remotePort === client.localPort && e.remoteAddress === client.localAddress);
  await agent.ask('destroy', { conn: client.conn });
  return { name, client: client.transport, server: accepted?.transport ?? null, why: tcpReason(agent.stderr, host, PORT) };
}

test('both servers registered: each has its own entry in the shared registry', () => {
  const now = files();
  assert.ok(filesOfA.length > 0, 'A\'s server added files to the shared registry');
  assert.ok(filesOfB.length > 0, 'B\'s server added files to the shared registry');
  const lostA = filesOfA.filter((n) => !now.has(n));
  assert.equal(lostA, [], `A's entry survived B's registration on the same port (A added ${filesOfA.join(', ')}, B added ${filesOfB.join(', ')}; now: ${[...now.keys()].join(', ')})`);
});

test('from C, each server is reached at its own address, over a ring', async () => {
  const A = lab.containers.a, B = lab.containers.b;
  const toA = await ask(c, a, A.address);
  const toB = await ask(c, b, B.address);
  assert.is(toA.name, A.hostname, `${A.address}:${PORT} reaches A's server`);
  assert.is(toB.name, B.hostname, `${B.address}:${PORT} reaches B's server`);
  assert.equal({ client: toA.client, server: toA.server }, { client: 'ring', server: 'ring' }, `C to A rides a ring${toA.why ? ` (took TCP: ${toA.why})` : ''}`);
  assert.equal({ client: toB.client, server: toB.server }, { client: 'ring', server: 'ring' }, `C to B rides a ring${toB.why ? ` (took TCP: ${toB.why})` : ''}`);
});

test('in A and in B, 127.0.0.1 reaches the server of that namespace, over a ring', async () => {
  const A = lab.containers.a, B = lab.containers.b;
  const inA = await ask(a, a, '127.0.0.1');
  const inB = await ask(b, b, '127.0.0.1');
  assert.is(inA.name, A.hostname, 'loopback in A reaches A\'s server, not B\'s');
  assert.is(inB.name, B.hostname, 'loopback in B reaches B\'s server, not A\'s');
  assert.equal({ client: inA.client, server: inA.server }, { client: 'ring', server: 'ring' }, `loopback in A rides a ring${inA.why ? ` (took TCP: ${inA.why})` : ''}`);
  assert.equal({ client: inB.client, server: inB.server }, { client: 'ring', server: 'ring' }, `loopback in B rides a ring${inB.why ? ` (took TCP: ${inB.why})` : ''}`);
});

test('SIGKILL of A\'s server: its entry is found stale and removed, B\'s stays and B still serves rings', async () => {
  const A = lab.containers.a, B = lab.containers.b;
  await a.kill();
  // A's namespace is still there, with nothing listening: TCP is refused, and so must xway be.
  const tcp = await c.ask('connect', { host: A.address, port: PORT, transport: 'off' });
  assert.is(tcp.error?.code, 'ECONNREFUSED', 'the TCP reference is refused');
  const auto = await c.ask('connect', { host: A.address, port: PORT });
  assert.is(auto.error?.code, 'ECONNREFUSED', `a connect to the dead server's address is refused as over TCP: ${JSON.stringify(auto)}`);
  await c.ask('stat'); // lists (and so judges) every entry
  const now = files();
  assert.equal(filesOfA.filter((n) => now.has(n)), [], `A's files are removed once found stale (left: ${[...now.keys()].join(', ')})`);
  assert.equal(filesOfB.filter((n) => !now.has(n)), [], `B's files are all still there (now: ${[...now.keys()].join(', ')})`);
  const toB = await ask(c, b, B.address);
  assert.is(toB.name, B.hostname);
  assert.equal({ client: toB.client, server: toB.server }, { client: 'ring', server: 'ring' }, `C to B still rides a ring${toB.why ? ` (took TCP: ${toB.why})` : ''}`);
});

s.run();
