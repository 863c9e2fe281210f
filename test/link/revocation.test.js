// A closed connection's Ring and Channel objects are revoked before its slot is reused
// (docs/links.md, "What a connection is"): using them throws ERR_XWAY_RELEASED, on the client and
// on the server, and the next connection in that slot — same memory, same offset — is not touched
// by them (every byte it carries checked, nothing extra, no reset).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { startPeer, useTempRegistry } from './helpers.js';

useTempRegistry(test, 'xlink-rev-');

test("a closed socket's channel throws ERR_XWAY_RELEASED; the connection that reuses its slot is unaffected", async () => {
  const server = await startPeer();
  const client = await startPeer();
  try {
    const { port } = await server.call('listen', {});
    const r = await client.call('revoke', { port });
    assert.ok(r.aOk, 'the first connection echoed its bytes');
    assert.equal(r.afterClose, { txWrite: 'ERR_XWAY_RELEASED', rxRead: 'ERR_XWAY_RELEASED', txEnd: 'ERR_XWAY_RELEASED', abort: 'ERR_XWAY_RELEASED' },
      'after close(), every use of the old channel throws ERR_XWAY_RELEASED');
    assert.ok(r.reused, 'the second connection took the first one\'s slot (same memory, same offset): the test would prove nothing otherwise');
    assert.equal(r.duringReuse, { txWrite: 'ERR_XWAY_RELEASED', abort: 'ERR_XWAY_RELEASED' }, 'the old channel still cannot reach the slot while it is reused');
    assert.ok(r.bOk, 'the second connection echoed 200,000 bytes exactly');
    assert.is(r.extra, 0, 'and nothing more');
    assert.is(r.bReset, false, 'and it was not reset');

    // The server side: the accepted end of the first connection, used after its close.
    const stale = await server.call('stale');
    assert.ok(stale.length >= 1, 'the server kept the closed connection\'s channel');
    assert.ok(stale.every((code) => code === 'ERR_XWAY_RELEASED'), `server-side stale writes: ${stale.join(', ')}`);
    const after = await client.call('echo', { bytes: 4096 });
    assert.equal(after, { n: 1, bad: 0, failed: 0, failures: [] }, 'the reused slot still carries data exactly after the server\'s stale write');
  } finally {
    await Promise.all([server.stop(), client.stop()]);
  }
});

test.run();
