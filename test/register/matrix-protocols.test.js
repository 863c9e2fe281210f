// The compatibility matrix, protocol and process rows: ws, http2, grpc-js, a program mixing an
// xway server and a plain TCP server, and a cluster. Same method as matrix-web.test.js: unmodified
// programs as separate processes, without and with the preload, outputs compared, rings proven
// from the preload's XWAY_DEBUG lines.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { compare, start, stop, tempRegistry, bounded, ringReport } from './harness.js';

function assertRings(report, { connects = 1, bytes = 0 } = {}) {
  assert.equal(report.tcpConnects, [], 'no connection to the server fell back to TCP');
  assert.ok(report.ringConnects >= connects, `at least ${connects} ring connects, saw ${report.ringConnects}:\n${report.lines.join('\n')}`);
  assert.is(report.accepts, report.ringConnects, 'the server accepted each ring connection');
  assert.ok(report.bytes >= bytes, `rings carried ${report.bytes} bytes, expected at least ${bytes}`);
}

test('ws: WebSocket echo of text and binary frames (one of 1 MiB)', async () => {
  const { plain, preloaded, report } = await compare({ server: 'ws-server.mjs', client: 'ws-client.mjs' });
  assert.ok(plain.client.includes('echo binary: [0,1,2,254,255]') && plain.client.includes('closed 1000 done'), plain.client);
  assert.is(preloaded.client, plain.client);
  assertRings(report, { bytes: 2 << 20 });
});

test('http2: 20 concurrent streams on one h2c session', async () => {
  const { plain, preloaded, report } = await compare({ server: 'http2-server.mjs', client: 'http2-client.mjs' });
  assert.ok(plain.client.includes('POST /s/19 got 190000 bytes'), plain.client);
  assert.is(preloaded.client, plain.client);
  assertRings(report, { bytes: 1_000_000 });
});

test('grpc-js: unary calls and a bidirectional stream', async () => {
  const { plain, preloaded, report } = await compare({ server: 'grpc-server.mjs', client: 'grpc-client.mjs' });
  assert.ok(plain.client.includes('add 40 2 = 42') && plain.client.includes('chat 50 replies: 0:MESSAGE 0'), plain.client);
  assert.is(preloaded.client, plain.client);
  assertRings(report);
});

test('mixed: one program talks to a co-resident xway server and to a plain TCP server at once', async () => {
  const reg = tempRegistry();
  const env = { XWAY_DIR: reg.dir };
  const outputs = [];
  try {
    for (const preload of ['none', 'import']) {
      const xwayServer = start('echo-server.mjs', { preload, env, waitLine: true });
      const plainServer = start('echo-server.mjs', { preload: 'none', env, waitLine: true }); // never preloaded
      let client;
      try {
        const [a, b] = [await xwayServer.firstLine, await plainServer.firstLine].map((l) => l.trim());
        client = start('mixed-client.mjs', { preload, env, args: [a, b] });
        const { code } = await bounded(client.exited, 30_000, 'mixed client did not finish');
        assert.is(code, 0, client.err);
        await stop(xwayServer);
        await stop(plainServer);
        outputs.push({ client: client.out, plainServer: plainServer.out, clientErr: client.err, a, b });
      } finally {
        for (const c of [client, xwayServer, plainServer]) if (c && c.exitCode === null) c.kill('SIGKILL');
      }
    }
  } finally {
    reg.remove();
  }
  const [plain, preloaded] = outputs;
  assert.is(plain.client, 'hello server 0 / hello server 1\n');
  assert.is(preloaded.client, plain.client);
  // The plain server saw an ordinary TCP peer both times, and the client's preload said why.
  assert.is(preloaded.plainServer, plain.plainServer);
  assert.is(preloaded.plainServer, 'peer 127.0.0.1 port>0 true\n');
  assert.match(preloaded.clientErr, new RegExp(`xway: connect 127\\.0\\.0\\.1:${preloaded.a} -> ring`));
  assert.match(preloaded.clientErr, new RegExp(`xway: connect 127\\.0\\.0\\.1:${preloaded.b} -> tcp \\(no xway endpoint is registered for port ${preloaded.b}\\)`));
});

test('cluster: two workers; both register, and ring connections are spread over them', async () => {
  const { plain, preloaded, report } = await compare({ server: 'cluster-server.mjs', client: 'cluster-client.mjs' });
  assert.is(plain.client, '40 answers\n');
  assert.is(preloaded.client, plain.client);
  assertRings(report, { connects: 40 });
  // Documented behaviour (docs/register.md): every worker registers (one entry, one member), and
  // a client takes them in turn.
  const endpoints = report.lines.filter((l) => / -> ring endpoint \(pid \d+\)$/.test(l));
  assert.is(endpoints.length, 2, report.lines.join('\n'));
  const workers = new Set(report.acceptLines.map((l) => /pid (\d+)\)$/.exec(l)?.[1]));
  assert.is(workers.size, 2, `accepted by ${[...workers].join(', ')}:\n${report.acceptLines.join('\n')}`);
  for (const pid of workers) {
    const share = report.acceptLines.filter((l) => l.endsWith(`pid ${pid})`)).length;
    assert.ok(share >= 15, `worker ${pid} accepted ${share} of 40`);
  }
});

test.run();
