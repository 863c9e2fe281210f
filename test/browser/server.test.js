// The visualizer's HTTP server without a browser: what it serves and with which headers, that
// nothing outside its roots can be reached, the Host check, the live stream (Server-Sent Events)
// and the `xway visualize` command's flags.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import http from 'node:http';
import { createInterface } from 'node:readline';
import { startVisualizer, snapshotJson, visualizeCommand } from '../../dist/cli/visualize.js';
import { Channel, createSharedMemory, readRingStats, RESERVED_BYTES } from '../../dist/index.js';

const servers = [];
test.after.each(() => {
  for (const s of servers.splice(0)) { s.close(); s.closeAllConnections(); }
});

const empty = () => ({ at: Date.now(), endpoints: [], connections: [] });

async function serve(options = {}) {
  const server = await startVisualizer({ snapshot: empty, ...options });
  servers.push(server);
  return server.address().port;
}

/** A raw GET (the path is sent exactly as given, not normalised by a URL parser). */
function get(port, path, headers = {}, method = 'GET') {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, method, headers }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('error', reject);
    req.setTimeout(5000, () => req.destroy(new Error(`GET ${path} timed out`)));
    req.end();
  });
}

function isolated(res, what) {
  assert.is(res.headers['cross-origin-opener-policy'], 'same-origin', `${what}: COOP`);
  assert.is(res.headers['cross-origin-embedder-policy'], 'require-corp', `${what}: COEP`);
  assert.is(res.headers['x-content-type-options'], 'nosniff', `${what}: nosniff`);
}

test('serves the page, the bindings from dist/ring and the chart library, cross-origin isolated, with their types', async () => {
  const port = await serve();
  const expect = {
    '/': 'text/html', '/index.html': 'text/html', '/main.js': 'text/javascript', '/producer.js': 'text/javascript',
    '/consumer.js': 'text/javascript', '/style.css': 'text/css', '/dist/ring/ring.js': 'text/javascript',
    '/dist/ring/wasm-bytes.generated.js': 'text/javascript', '/dist/errors.js': 'text/javascript',
    '/vendor/uplot/uPlot.esm.js': 'text/javascript', '/vendor/uplot/uPlot.min.css': 'text/css',
  };
  for (const [path, type] of Object.entries(expect)) {
    const res = await get(port, path);
    assert.is(res.status, 200, path);
    assert.ok(res.headers['content-type'].startsWith(type), `${path}: ${res.headers['content-type']}`);
    isolated(res, path);
  }
  assert.match((await get(port, '/')).body, 'ring visualizer');
  const head = await get(port, '/main.js', {}, 'HEAD');
  assert.is(head.status, 200);
  assert.is(head.body, '');
});

test('every module the page imports, directly or through the bindings, is served', async () => {
  const port = await serve();
  const seen = new Set();
  const queue = ['/main.js', '/producer.js', '/consumer.js'];
  while (queue.length) {
    const path = queue.shift();
    if (seen.has(path)) continue;
    seen.add(path);
    const res = await get(port, path);
    assert.is(res.status, 200, `${path} (imported)`);
    for (const m of res.body.matchAll(/(?:\bfrom\s*|\bimport\s*\(?\s*|new URL\(\s*`?)['"`](\.{1,2}\/[^'"`$]+)['"`]/g)) {
      queue.push(new URL(m[1], `http://x${path}`).pathname);
    }
  }
  for (const must of ['/dist/ring/core.js', '/dist/ring/ring.js', '/dist/ring/futex.js', '/dist/errors.js', '/vendor/uplot/uPlot.esm.js']) {
    assert.ok(seen.has(must), `${must} is reached from the page (reached: ${[...seen].join(' ')})`);
  }
});

test('refuses paths outside its roots, encoded or not, and files it does not serve', async () => {
  const port = await serve();
  const refused = [
    '/../package.json', '/../../package.json', '/dist/ring/../../package.json', '/%2e%2e/package.json',
    '/dist/ring/%2e%2e/%2e%2e/package.json', '/dist/ring/..%2f..%2fpackage.json', '/..%2fpackage.json',
    '/..%5cpackage.json', '/dist/ring/..%5c..%5cpackage.json', '/%2e%2e%2f%2e%2e%2fetc/passwd', '/../../../../etc/passwd',
    '/dist/ring/ring.d.ts', '/dist/index.js', '/dist/cli/visualize.js', '/src/ring/ring.ts', '/package.json',
    '/.git', '/web/index.html', '/main.js%00.html', '/%ff', '/vendor/uplot/uPlot.cjs.js', '/vendor/uplot/../uplot/package.json',
    '//etc/passwd', 'package.json',
  ];
  for (const path of refused) {
    const res = await get(port, path);
    assert.ok(res.status === 404 || res.status === 400, `${path} gives ${res.status}`);
    assert.not.match(res.body, '"name"', `${path} must not leak a file`);
    assert.not.match(res.body, 'root:', `${path} must not leak a file`);
    // (Node's own parser answers a request line without a leading slash, before any handler.)
    if (path.startsWith('/')) isolated(res, path);
  }
});

test('answers only loopback Host names when bound to loopback, and only GET and HEAD', async () => {
  const port = await serve();
  assert.is((await get(port, '/', { Host: 'evil.example' })).status, 403);
  assert.is((await get(port, '/live', { Host: 'attacker.test:80' })).status, 403);
  assert.is((await get(port, '/', { Host: `localhost:${port}` })).status, 200);
  assert.is((await get(port, '/', { Host: `[::1]:${port}` })).status, 200);
  assert.is((await get(port, '/', {}, 'POST')).status, 405);
});

/** Reads Server-Sent Events from /live until `count` events arrived; returns them. */
function readEvents(port, count, headers = {}) {
  return new Promise((resolve, reject) => {
    const events = [];
    const req = http.get({ host: '127.0.0.1', port, path: '/live', headers }, (res) => {
      let buffered = '';
      res.setEncoding('utf8');
      res.on('data', (chunk) => {
        buffered += chunk;
        let end;
        while ((end = buffered.indexOf('\n\n')) >= 0) {
          const block = buffered.slice(0, end);
          buffered = buffered.slice(end + 2);
          const data = block.split('\n').filter((l) => l.startsWith('data: ')).map((l) => l.slice(6)).join('\n');
          const type = block.split('\n').find((l) => l.startsWith('event: '))?.slice(7) ?? 'message';
          if (!data) continue;
          events.push({ type, data: JSON.parse(data), headers: res.headers });
          if (events.length === count) { req.destroy(); resolve(events); }
        }
      });
    });
    req.on('error', (err) => { if (events.length < count) reject(err); });
    req.setTimeout(5000, () => req.destroy(new Error(`only ${events.length} of ${count} events within 5 s`)));
  });
}

test('live mode streams snapshots as JSON every interval, counters as numbers', async () => {
  // A real channel whose ring headers the snapshot reads, as the real reader does.
  const memory = createSharedMemory({ bytes: Channel.byteLength(4096) });
  const channel = Channel.create(memory, RESERVED_BYTES, { capacityA: 4096 });
  const ringA = channel.tx.offset;
  const ringB = channel.rx.offset;
  const snapshot = () => {
    channel.tx.write(new Uint8Array(100));
    return {
      at: Date.now(),
      endpoints: [{ port: 4321, host: '127.0.0.1', pid: process.pid, controlPath: '/x' }],
      connections: [{
        id: `${process.pid}:1`, platform: 'threads', port: 4321, serverPid: process.pid, clientPid: process.pid,
        since: Date.now(), state: 'open',
        clientToServer: readRingStats(memory.buffer, ringA), serverToClient: readRingStats(memory.buffer, ringB),
      }],
    };
  };
  {
    const port = await serve({ snapshot, intervalMs: 50 });
    const events = await readEvents(port, 3);
    assert.ok(events[0].headers['content-type'].startsWith('text/event-stream'));
    isolated({ headers: events[0].headers }, '/live');
    const bytes = events.map((e) => e.data.connections[0].clientToServer.bytesIn);
    for (const b of bytes) assert.type(b, 'number');
    assert.ok(bytes[0] < bytes[1] && bytes[1] < bytes[2], `bytesIn increases: ${bytes}`);
    assert.is(events[0].data.connections[0].port, 4321);
  }
});

test('live mode says what is wrong when the reader fails, and keeps streaming', async () => {
  let n = 0;
  const port = await serve({ intervalMs: 30, snapshot: () => { if (n++ === 0) throw new Error('no registry here'); return empty(); } });
  const events = await readEvents(port, 2);
  assert.is(events[0].type, 'problem');
  assert.is(events[0].data.message, 'no registry here');
  assert.is(events[1].type, 'message');
  assert.equal(events[1].data.connections, []);
});

test('snapshotJson: bigints become numbers while exact, decimal strings beyond 2^53', () => {
  const text = snapshotJson({ at: 1, endpoints: [], connections: [{ a: 5n, b: 2n ** 60n }] });
  assert.equal(JSON.parse(text).connections[0], { a: 5, b: '1152921504606846976' });
});

test('visualizeCommand: bad flags are named, --help prints usage', async () => {
  for (const [argv, flag] of [[['--bogus'], '--bogus'], [['--port', 'x'], '--port'], [['--port', '70000'], '--port'],
    [['--port', '-1'], '--port'], [['--host', ''], '--host'], [['extra'], 'extra']]) {
    try {
      await visualizeCommand(argv);
      assert.unreachable(`${argv.join(' ')} must fail`);
    } catch (err) {
      assert.instance(err, Error);
      assert.match(err.message, flag, `${argv.join(' ')}: ${err.message}`);
      assert.is(err.name, 'UsageError', err.message);
    }
  }
  const write = process.stdout.write;
  let out = '';
  process.stdout.write = (s) => { out += s; return true; };
  try { await visualizeCommand(['--help']); } finally { process.stdout.write = write; }
  assert.match(out, 'Usage: xway visualize');
  assert.match(out, '--port');
});

test('visualizeCommand prints the URL, serves it, and stops on SIGINT', async () => {
  const code = `import('${new URL('../../dist/cli/visualize.js', import.meta.url).href}').then((m) => m.visualizeCommand(['--port', '0'])).then(() => console.log('stopped'))`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
  const lines = createInterface({ input: child.stdout });
  const next = () => new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('no output within 10 s')), 10_000);
    lines.once('line', (line) => { clearTimeout(t); resolve(line); });
  });
  try {
    const line = await next();
    const url = line.match(/http:\/\/127\.0\.0\.1:(\d+)\//);
    assert.ok(url, line);
    const res = await get(Number(url[1]), '/');
    assert.is(res.status, 200);
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGINT');
    assert.is(await next(), 'stopped');
    assert.is(await exited, 0);
  } finally {
    child.kill('SIGKILL');
  }
});

test.run();
