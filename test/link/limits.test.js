// A link's limits (docs/links.md, "Limits"): past the ring memory a link may hold, new connections
// use TCP — data still flows, XWAY_DEBUG says why, and the connections already on the ring are
// not disturbed; and a server out of descriptors (EMFILE) neither spins nor treats a ring client
// worse than a TCP one.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import { cpuSeconds, sleep, startPeer, useTempRegistry } from './helpers.js';

useTempRegistry(test, 'xlink-limit-');
const MiB = 1024 * 1024;
/** Bytes a 256 KiB-ring connection takes of a link (channel rounded to whole 4 KiB pages). */
const CONNECTION_BYTES = 528384;

test('XWAY_RING_MEMORY_PER_LINK=8M: connections past the limit use TCP, data flows on all, XWAY_DEBUG says why', async () => {
  const env = { XWAY_RING_MEMORY_PER_LINK: '8M' };
  const server = await startPeer({ env });
  const client = await startPeer({ env: { ...env, XWAY_DEBUG: '1' } });
  try {
    const { port } = await server.call('listen', {});
    let ring = 0, tcp = 0;
    for (let batch = 0; batch < 4; batch++) {
      const r = await client.call('connect', { port, n: 10, echo: 1000 });
      assert.is(r.errorCount, 0, `no connection failed: ${r.errors}`);
      assert.is(r.bad + r.echoFailed, 0, `batch ${batch}: every connection echoed its bytes, ring or TCP: ${JSON.stringify(r)}`);
      ring += r.ring;
      tcp += r.tcp;
    }
    const again = await client.call('echo', { bytes: 8192 });
    assert.is(again.bad + again.failed, 0, 'all 40 still carry data');
    const reasons = client.stderrText.split('\n').filter((l) => /-> tcp \(ring set-up failed: the link's ring memory would pass its limit of 8388608 bytes\)/.test(l));
    console.log(`  8 MiB per link: ${ring} of 40 connections on the ring, ${tcp} on TCP; XWAY_DEBUG: ${JSON.stringify(reasons[0] ?? client.stderrText.split('\n')[0])}`);
    assert.is(reasons.length, tcp, 'XWAY_DEBUG gives the limit as the reason for each TCP connection');
    assert.ok(tcp > 0, 'connections past the limit use TCP');
    // 8 MiB is room for 15 such connections; at least one must fit, or the limit is not "ring
    // memory per link" but less.
    assert.ok(ring >= 1 && ring <= Math.floor(8 * MiB / CONNECTION_BYTES),
      `${ring} connections rode the ring under an 8 MiB limit, expected 1 to ${Math.floor(8 * MiB / CONNECTION_BYTES)} (the limit counts chunk 0 and whole 8 MiB chunks: 192 KiB + 8 MiB > 8 MiB admits none)`);
  } finally {
    await Promise.all([server.stop(), client.stop()]);
  }
});

test('a server whose per-link limit is below its client\'s: the connection past it uses TCP, the ones on the ring carry on', async () => {
  const server = await startPeer({ env: { XWAY_RING_MEMORY_PER_LINK: '8M' } });
  const client = await startPeer({ env: { XWAY_DEBUG: '1' } });
  try {
    const { port } = await server.call('listen', {});
    // 15 connections fill the first 8 MiB chunk; the 16th needs a second, past the server's 8 MiB.
    const first = await client.call('connect', { port, n: 15, echo: 1000 });
    assert.is(first.ring, 15, 'the first chunk\'s 15 connections ride the ring');
    const next = await client.call('connect', { port, n: 1, echo: 1000 });
    assert.is(next.bad + next.echoFailed + next.errorCount, 0, `the 16th connection carries data: ${JSON.stringify(next)}`);
    const all = await client.call('echo', { bytes: 4096 });
    const failed = server.events.filter((e) => e.event === 'link-closed');
    assert.equal(all, { n: 16, bad: 0, failed: 0, failures: [] },
      `the 15 ring connections must not be reset because a 16th passed the server's limit; the server: ${JSON.stringify(failed)}`);
    assert.is(next.tcp, 1, 'the 16th uses TCP');
  } finally {
    await Promise.all([server.stop(), client.stop()]);
  }
});

test('a listener takes more than its ephemeral range of ring connections in a minute, as TCP does', async () => {
  // A server's ephemeral ports for ring connections rest after release, as TCP's do in TIME_WAIT;
  // but on loopback the kernel reuses a TIME_WAIT port for a new connection (tcp_tw_reuse), so a
  // TCP client can open and close far more than the ~14,000 even ports of the range each minute.
  const server = await startPeer();
  const client = await startPeer({ env: { XWAY_DEBUG: '1' } });
  try {
    const { port } = await server.call('listen', {});
    const [low, high] = fs.readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
    const evens = Math.floor((high - (low + (low & 1))) / 2) + 1; // the ports a listener gives ring connections
    const total = evens + 500;
    const tcp = await client.call('churn', { port, total: 2000, parallel: 1000, options: { transport: 'off' } }, 60_000);
    assert.is(tcp.failed, 0, `TCP: ${tcp.firstError}`);
    const ring = await client.call('churn', { port, total, parallel: 1000, options: { ringCapacity: 16384 } }, 60_000);
    console.log(`  ${total} short connections to one listener: ${ring.ring} on the ring, ${ring.tcp} on TCP (the first after ${ring.firstFallback}), ${ring.failed} failed, in ${(ring.ms / 1000).toFixed(1)} s; TCP alone: 2000 in ${(tcp.ms / 1000).toFixed(1)} s`);
    assert.is(ring.failed, 0, `every connection carried its byte: ${ring.firstError}`);
    const why = client.stderrText.split('\n').find((l) => /-> tcp \(ring set-up failed/.test(l));
    assert.is(ring.tcp, 0, `${ring.tcp} connections fell back to TCP after ${ring.firstFallback} rode the ring within a minute: ${why}`);
  } finally {
    await Promise.all([server.stop(), client.stop()]);
  }
});

test('EMFILE: a server out of descriptors does not spin, and a ring client fares as a TCP client does', async () => {
  const server = await startPeer({ fdLimit: 128, env: { XWAY_DEBUG: '1' } });
  const client = await startPeer({ env: { XWAY_DEBUG: '1' } });
  try {
    const { port } = await server.call('listen', {});
    const exhausted = await server.call('exhaust');
    assert.is(exhausted.code, 'EMFILE', 'the server process used up its descriptors');

    const cpu0 = cpuSeconds(server.pid);
    const ringClient = await client.call('connect', { port, n: 1, echo: 10 });
    const tcpClient = await client.call('connect', { port, n: 1, echo: 10, options: { transport: 'off' } });
    // libuv's answer to EMFILE is to accept the queued connection and close it at once: the
    // client connects, then sees EOF or, when its bytes got there first, ECONNRESET — the same
    // race for a TCP client as for a ring client that fell back to TCP.
    const dropped = (failures) => failures.map((f) => (f === 'ECONNRESET' || /^closed after 0 of/.test(f) ? 'dropped (EOF or ECONNRESET)' : f));
    const outcome = (r) => ({ connected: r.ring + r.tcp, failedToConnect: r.errors, transport: r.ring ? 'ring' : r.tcp ? 'tcp' : null, echo: dropped(r.echoFailures), seen: r.echoFailures });
    console.log(`  EMFILE in the server: a ring client ${JSON.stringify(outcome(ringClient))} in ${ringClient.ms.toFixed(1)} ms; a TCP client ${JSON.stringify(outcome(tcpClient))} in ${tcpClient.ms.toFixed(1)} ms`);
    const why = client.stderrText.split('\n').find((l) => /-> tcp \(ring set-up failed/.test(l));
    assert.ok(why, 'XWAY_DEBUG says why the ring client used TCP');
    assert.is(outcome(ringClient).transport, 'tcp', 'the ring client fell back to TCP');
    assert.equal({ ...outcome(ringClient), transport: null, seen: null }, { ...outcome(tcpClient), transport: null, seen: null }, 'and then saw what the TCP client saw');
    assert.ok(ringClient.ms < tcpClient.ms + 1000, 'without waiting for a set-up time-out');

    const cpu1 = cpuSeconds(server.pid);
    await sleep(2000);
    const spent = cpuSeconds(server.pid) - cpu1;
    console.log(`  server CPU while out of descriptors: ${((cpu1 - cpu0) * 1000).toFixed(0)} ms during the connects, ${(spent * 1000).toFixed(0)} ms over the next 2 s`);
    assert.ok(spent < 0.1, `the server used ${spent.toFixed(2)} s of CPU in 2 s while out of descriptors: it spins`);
    assert.equal(server.events.filter((e) => e.event === 'fatal'), []);

    await server.call('release');
    const recovered = await client.call('connect', { port, n: 1, echo: 100 });
    assert.is(recovered.ring, 1, 'with descriptors free again, ring connections are back');
    assert.is(recovered.bad + recovered.echoFailed, 0);
  } finally {
    await Promise.all([server.stop(), client.stop()]);
  }
});

test.run();
