// A hostile peer on a link (docs/links.md, "Trust"): a real second process (fixtures/hostile.mjs)
// sets a link up with a victim server by hand and then breaks the rules — garbage records, OPENs
// out of range, a channel straddling two chunks, GROWs that lie, a duplicate OPEN, random pending
// bits, scribbles over the link header, the control channel and an accepted connection's rings.
// For each: the victim keeps serving a good client on another link (its existing connection and a
// new one echo exactly, while the hostile one is at work), the hostile link is closed with a
// reason (or, where no rule is broken that the victim can see, kept until its process goes), the
// victim never crashes, and once the hostile process is gone the victim holds exactly the
// descriptors and link mappings it held before.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { fdDiff, fdsOf, linkMappings, settle, sleep, startHostile, startPeer, useTempRegistry } from './helpers.js';
import { lookupEndpoint } from '../../dist/index.js';
import { CHUNK0_BYTES } from '../../dist/platform/common/link-layout.js';

/** Chunk 0's size in 64 KiB pages: where chunk 1 must begin (the fixture's wrong GROW is 4 past it). */
const CHUNK0_PAGES = CHUNK0_BYTES / 65536;

const test = suite('hostile peer on a link');
useTempRegistry(test, 'xlink-hostile-');

// What the victim must do with each scenario: close the link with a reason matching `fail`, or
// keep it (`kept`), with `refusals` REFUSE records sent back, or a reset of the accepted
// connection (`resetsAccepted`). `either`: a random scribble may or may not hit a checked word.
const SCENARIOS = [
  { name: 'random records', fail: /control record|not for the acceptor|OPEN|GROW/ },
  { name: 'record of unknown type', fail: /unknown control record type 0/ },
  { name: 'record for the other side (ACCEPT)', fail: /record type 2 is not for the acceptor/ },
  { name: 'short record', fail: /a control record of 20 bytes/ },
  { name: 'OPEN of slot 0', fail: /OPEN of slot 0\b/ },
  { name: 'OPEN of slot MAX_SLOTS', fail: /OPEN of slot 131072/ },
  { name: 'OPEN of slot 2^32-1', fail: /OPEN of slot 4294967295/ },
  { name: 'OPEN in chunk 0', fail: /OPEN in chunk 0/ },
  { name: 'OPEN in a chunk never grown', fail: /OPEN in chunk 9/ },
  { name: 'OPEN at an offset outside the chunk', fail: /outside chunk 1/ },
  { name: 'OPEN at a misaligned offset', fail: /OPEN at 8\+/ },
  { name: 'OPEN whose channel straddles two chunks', fail: /outside chunk 1/ },
  { name: 'OPENs with invalid capacities (refused, link kept)', kept: true, refusals: 4 },
  { name: 'OPEN with a malformed route (refused, link kept)', kept: true, refusals: 1 },
  { name: 'OPEN with an ephemeral port never granted (refused, link kept)', kept: true, refusals: 1 },
  { name: 'OPEN with an ephemeral port past 65535', fail: /OPEN with ephemeral port 70000/ },
  { name: 'GROW at a wrong offset', fail: new RegExp(`chunk at page ${CHUNK0_PAGES + 4}, expected ${CHUNK0_PAGES}\\b`) },
  { name: 'GROW beyond the memfd', fail: /fewer than the 8388608 bytes/ },
  { name: 'GROW of a chunk out of order', fail: /GROW of chunk 2, expected 1/ },
  { name: 'GROW of 0 pages', fail: /GROW of 0 pages/ },
  // Past the victim's limit is not a broken rule (the client's limit may just be larger): LIMIT.
  { name: 'GROW past the per-link limit', kept: true, limitAnswer: true },
  { name: 'duplicate OPEN of an open slot', fail: /OPEN of slot 1, which is open/, resetsAccepted: true },
  { name: 'random pending-set bits (link kept)', kept: true },
  { name: 'scribbles over the link header', either: true },
  { name: 'scribbles over the control channel', fail: /impossible index|corrupt|control record|unknown control|not for the acceptor|OPEN|GROW/ },
  { name: "scribbles over an accepted connection's ring headers", either: true, corruptsAccepted: true },
];

let victim, good, port, controlPath, baseline;
/** The good client's connections use 16 KiB rings, so a new one each scenario never needs a new
 *  chunk (which would change the victim's mappings). */
const GOOD = { ringCapacity: 16384 };

test.before(async () => {
  victim = await startPeer({ env: { XWAY_RING_MEMORY_PER_LINK: '1G' } }); // a 4 GiB GROW passes it
  good = await startPeer();
  ({ port } = await victim.call('listen', {}));
  controlPath = lookupEndpoint(port).controlPath;
  const made = await good.call('connect', { port, n: 2, echo: 1000, options: GOOD });
  assert.is(made.ring, 2);
  baseline = { fds: fdsOf(victim.pid), maps: linkMappings(victim.pid) };
});

test.after(async () => {
  await Promise.all([victim?.stop(), good?.stop()]);
});

/** The good client, while or after the hostile one works: its existing connections echo, and a
 *  new connection is set up, rides the ring and echoes; then it is closed again. */
async function goodClientServed(what) {
  const t0 = performance.now();
  const existing = await good.call('echo', { bytes: 4096, seed: Math.floor(Math.random() * 1e6) }, 5000);
  const fresh = await good.call('connect', { port, n: 1, echo: 4096, options: GOOD }, 5000);
  const ms = performance.now() - t0;
  assert.is(existing.bad + existing.failed, 0, `${what}: the good client's existing connections: ${JSON.stringify(existing)}`);
  assert.is(fresh.ring, 1, `${what}: the good client's new connection rides the ring: ${JSON.stringify(fresh)}`);
  assert.is(fresh.bad + fresh.echoFailed, 0, `${what}: the new connection echoes`);
  assert.ok(ms < 3000, `${what}: the good client waited ${ms.toFixed(0)} ms`);
  await good.call('closeLast');
  return ms;
}

for (const s of SCENARIOS) {
  test(s.name, async () => {
    const seen = victim.events.length;
    const hostile = startHostile(controlPath, port, s.name);
    try {
      await hostile.next('linked', 5000);
      await sleep(30);
      const duringMs = await goodClientServed('while the hostile peer works');
      const sent = await hostile.next('sent', 5000);
      assert.is(sent.error, undefined, `the hostile peer could do its deed: ${sent.error}`);

      const linkClosed = () => victim.events.slice(seen).filter((e) => e.event === 'link-closed');
      if (s.fail) {
        await settle(() => linkClosed().length > 0, true, 2000);
        const closed = linkClosed();
        assert.is(closed.length, 1, `the victim closed one link: ${JSON.stringify(closed)}`);
        assert.is(closed[0].how, 'fail', 'as a peer that broke the rules');
        assert.match(closed[0].reason, /^link failed: /);
        assert.match(closed[0].reason, s.fail);
        await hostile.next('ctl-closed', 2000); // the hostile peer sees its link dropped
      } else if (s.kept) {
        await sleep(50);
        assert.equal(linkClosed(), [], 'no rule the victim can check was broken: the link stays');
      }
      if (s.limitAnswer) {
        await settle(() => hostile.events.some((e) => e.event === 'record' && e.op === 6), true, 2000);
        assert.ok(hostile.events.some((e) => e.event === 'record' && e.op === 6), 'the victim answered LIMIT');
      }
      if (s.refusals) {
        const refused = hostile.events.filter((e) => e.event === 'record' && e.op === 3);
        assert.is(refused.length, s.refusals, `REFUSE records: ${JSON.stringify(refused)}`);
        assert.ok(refused.every((r) => r.reason === 'malformed'), 'refused as malformed');
      }
      const socketErrors = victim.events.slice(seen).filter((e) => e.event === 'socket-error').map((e) => e.code);
      if (s.resetsAccepted) assert.equal(socketErrors, ['ECONNRESET'], 'the accepted connection of the broken link is reset');
      if (s.corruptsAccepted) assert.ok(socketErrors.length === 1 && socketErrors.every((c) => /^ERR_XWAY_RING_CORRUPT$|^ECONNRESET$/.test(c)), `the scribbled connection fails typed: ${socketErrors}`);
      await goodClientServed('after the hostile peer\'s deed');
      if (duringMs > 1000) console.log(`  (${s.name}: the good client took ${duringMs.toFixed(0)} ms while the hostile peer worked)`);
    } finally {
      await hostile.stop();
    }
    // The hostile process is gone: the victim lets go of everything its link held.
    const fds = await settle(() => fdDiff(baseline.fds, fdsOf(victim.pid)), { added: [], removed: [] }, 3000);
    assert.equal(fds, { added: [], removed: [] }, 'the victim\'s descriptors are back to what they were');
    const maps = await settle(() => linkMappings(victim.pid), baseline.maps, 1000);
    assert.equal(maps, baseline.maps, 'the victim\'s link mappings are back to what they were');
    const linkClosed = () => victim.events.slice(seen).filter((e) => e.event === 'link-closed');
    await settle(() => linkClosed().length, 1, 2000); // the victim's report may trail its descriptors
    const closed = linkClosed();
    assert.is(closed.length, 1, `the hostile link was closed exactly once: ${JSON.stringify(closed)}`);
    if (!s.fail) assert.match(closed[0].reason, /control socket|link failed/, 'the hostile link closed when its process went, or for a rule it broke');
    assert.equal(victim.events.filter((e) => e.event === 'fatal' || e.event === 'server-error'), [], 'nothing unhandled in the victim');
    assert.is(victim.exitCode, null, 'the victim is alive');
  });
}

test.run();
