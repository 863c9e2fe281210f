// Who may connect, across containers that run as different uids and share one registry.
//   uid 64001: the server (gid 64001, or 64000 in the group case)
//   uid 64002: a client the server allows by uid (XWAY_ALLOW_UIDS)
//   uid 64003: a client nobody allows (no shared group)
//   uid 64004: a client in group 64000 as a supplementary group (Kubernetes' fsGroup)
//   uid 64005: a client with 64000 as its primary group (Compose's user: "64005:64000")
// Owner-only stays the default; XWAY_ALLOW_UIDS / XWAY_ALLOW_GROUP (set the same in every
// container) let the others in; a uid that is not allowed gets TCP, and XWAY_DEBUG says why. A
// client trusts an entry only while it and its control socket are owned by an allowed uid and not
// writable by others: the test tampers with the server's files and expects TCP.
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import path from 'node:path';
import { labSuite, unavailable, tcpReason } from './common.js';
import { createLab } from './netns.js';

const { s, test } = labSuite('containers: who may connect across uids');
const SERVER = { uid: 64001, gid: 64001 }, GROUP = 64000;

let lab, A, port = 7600;
s.before(() => {
  if (unavailable) return;
  lab = createLab({ containers: { a: {}, b: {} } });
  A = lab.containers.a;
});
s.after(async () => { await lab?.close(); });

/** A fresh registry with the given root, and an xway echo server in A as `who` with `env`. */
async function serve({ registry, who = SERVER, env = {} }) {
  await lab.stopAll();
  lab.clearRegistry();
  lab.setRegistry(registry);
  const before = new Set(fs.readdirSync(lab.shared));
  const server = await lab.agent('a', { ...who, env: { XWAY_DEBUG: '1', ...env } });
  const p = ++port;
  await server.ask('listen', { port: p, host: '0.0.0.0' });
  const added = fs.readdirSync(lab.shared).filter((n) => !before.has(n));
  return { server, port: p, added };
}

/** A client in B as `who` with `env`: connects to A, echoes 64 KiB, reports what carried it. */
async function client(p, who, env = {}) {
  const agent = await lab.agent('b', { ...who, env: { XWAY_DEBUG: '1', ...env } });
  try {
    const c = await agent.ask('connect', { host: A.address, port: p });
    assert.not.ok(c.error, `uid ${who.uid} connects (over some transport): ${JSON.stringify(c.error)}`);
    const r = await agent.ask('transfer', { conn: c.conn, bytes: 64 << 10 });
    assert.is(r.receivedSha, r.sentSha, `uid ${who.uid}: the echo came back intact`);
    return { transport: c.transport, why: tcpReason(agent.stderr, A.address, p), stderr: agent.stderr };
  } finally {
    await agent.kill();
  }
}

const rides = (r, who) => assert.is(r.transport, 'ring', `uid ${who} rides a ring${r.why ? ` (it took TCP: ${r.why})` : ''}`);

/** TCP, and a reason that speaks of who may connect (not of addresses or missing entries). */
function refused(r, who) {
  assert.is(r.transport, 'tcp', `uid ${who}, not allowed, uses TCP`);
  assert.ok(r.why, `XWAY_DEBUG says why uid ${who} took TCP:\n${r.stderr}`);
  assert.ok(/uid|allow|permi|credential|EACCES|owne|trust|refus/i.test(r.why) && !/not an address of this machine/.test(r.why),
    `the reason names the refusal of uid ${who}, not something else: "${r.why}"`);
}

test('owner-only by default: a client of another uid uses TCP, and it works', async () => {
  const { port: p } = await serve({ registry: { uid: SERVER.uid, gid: SERVER.gid, mode: 0o755 } });
  const r = await client(p, { uid: 64002, gid: 64002 });
  assert.is(r.transport, 'tcp', 'no ring to a uid the server did not allow');
  assert.ok(r.why, `XWAY_DEBUG says why:\n${r.stderr}`);
});

test('XWAY_ALLOW_UIDS: an allowed uid connects over a ring; another is refused with a reason and uses TCP', async () => {
  const env = { XWAY_ALLOW_UIDS: '64001,64002' };
  const { port: p } = await serve({ registry: { uid: SERVER.uid, gid: SERVER.gid, mode: 0o755 }, env });
  rides(await client(p, { uid: 64002, gid: 64002 }, env), 64002);
  refused(await client(p, { uid: 64003, gid: 64003 }, env), 64003);
});

test('XWAY_ALLOW_GROUP: members of the group (supplementary or primary) connect over rings; others are refused with a reason', async () => {
  const env = { XWAY_ALLOW_GROUP: String(GROUP) };
  const { port: p } = await serve({ registry: { uid: 0, gid: GROUP, mode: 0o2770 }, who: { uid: SERVER.uid, gid: GROUP }, env });
  rides(await client(p, { uid: 64004, gid: 64004, groups: [GROUP] }, env), 64004);
  rides(await client(p, { uid: 64005, gid: GROUP }, env), 64005);
  refused(await client(p, { uid: 64003, gid: 64003 }, env), 64003);
});

test('a client does not trust an entry or control socket that others may write, or that a uid not allowed owns', async () => {
  const env = { XWAY_ALLOW_GROUP: String(GROUP) };
  const member = { uid: 64004, gid: 64004, groups: [GROUP] };
  const { port: p, added } = await serve({ registry: { uid: 0, gid: GROUP, mode: 0o2770 }, who: { uid: SERVER.uid, gid: GROUP }, env });
  rides(await client(p, member, env), 64004); // the baseline: trusted as published
  assert.ok(added.length > 0, 'the server published files in the shared registry');
  const files = added.map((n) => path.join(lab.shared, n));
  const original = files.map((f) => fs.lstatSync(f));
  const restore = () => files.forEach((f, i) => { fs.chownSync(f, original[i].uid, original[i].gid); fs.chmodSync(f, original[i].mode & 0o7777); });
  for (const [i, f] of files.entries()) {
    fs.chmodSync(f, (original[i].mode & 0o7777) | 0o002);
    const r = await client(p, member, env);
    restore();
    assert.is(r.transport, 'tcp', `${path.basename(f)} writable by others: not trusted, TCP${r.why ? '' : ' (and XWAY_DEBUG said nothing)'}`);
    fs.chownSync(f, 64003, original[i].gid);
    const r2 = await client(p, member, env);
    restore();
    assert.is(r2.transport, 'tcp', `${path.basename(f)} owned by uid 64003, not allowed: not trusted, TCP`);
  }
  rides(await client(p, member, env), 64004); // restored: trusted again
});

s.run();
