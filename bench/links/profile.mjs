// Where the time of a ring connection's set-up goes: a server process and a client process, both
// under V8's CPU profiler (--cpu-prof), the client opening connections for a while — one at a time
// (crr), or `--parallel N` at once, each connect, 1 B request, 1 B response, close — over the
// ring (or TCP, --tcp, for comparison). Prints the connections/s and each process's heaviest
// functions by self time, and leaves the .cpuprofile files (open them in Chrome's DevTools).
//
// XWAY_PROFILE_EARLY=1: the client writes its request right after connect(), before 'connect' (as
// an http client does), so a ring's OPEN carries it (accept overlaps the first data).
//
// Bursts are 300 ms apart (--pause), so that the server's closes, which free ring slots, keep up;
// a listener gives out ~14,000 ring ports a minute (they rest 60 s after use), so keep
// --seconds × rate below that.
//
//   node bench/links/profile.mjs [--parallel N] [--seconds S] [--ring SIZE] [--pause MS] [--tcp] [--out DIR]
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const dist = path.join(here, '../../dist/index.js');

if (process.argv[2] === '--role') {
  const [, , , role, portText, mode, countText, secondsText, ringText, pauseText] = process.argv;
  const { default: xway } = await import(dist);
  const net = await import('node:net');
  const tcp = mode === 'tcp';
  if (role === 'server') {
    const onConnection = (sock) => {
      sock.on('error', () => {});
      sock.once('data', () => sock.end('r'));
    };
    const server = tcp ? net.createServer(onConnection) : xway.createServer({ transport: 'force' }, onConnection);
    server.listen({ port: 0, host: '127.0.0.1', backlog: 4096 }, () => process.stdout.write(`${server.address().port}\n`));
    process.stdin.on('data', () => {}).on('end', () => process.exit(0)); // the profile is written at exit
  } else {
    const port = Number(portText), count = Number(countText), until = performance.now() + Number(secondsText) * 1000;
    const one = () => new Promise((resolve, reject) => {
      const sock = tcp ? net.connect({ port, host: '127.0.0.1' }) : xway.connect({ port, host: '127.0.0.1', transport: 'force', ringCapacity: Number(ringText) || undefined });
      if (process.env.XWAY_PROFILE_EARLY === '1') sock.write('q'); // before 'connect': accept overlaps the first data
      else sock.once('connect', () => sock.write('q'));
      sock.on('data', () => {});
      sock.once('error', reject);
      sock.once('close', resolve);
    });
    let done = 0, busy = 0;
    process.on('unhandledRejection', (err) => { process.stderr.write(`client: ${err.stack}\n`); process.exit(1); });
    await one(); // the link is set up (ring), outside the count
    const t0 = performance.now();
    while (performance.now() < until) {
      if (count <= 1) await one();
      else {
        const tb = performance.now();
        await Promise.all(Array.from({ length: count }, one));
        busy += performance.now() - tb;
        await new Promise((r) => setTimeout(r, Number(pauseText)));
      }
      done += Math.max(1, count);
    }
    const ms = count <= 1 ? performance.now() - t0 : busy;
    process.stdout.write(`${done} ${(done / (ms / 1000)).toFixed(0)}\n`);
    process.exit(0);
  }
} else {
  const { values } = parseArgs({ options: { parallel: { type: 'string', default: '1' }, seconds: { type: 'string', default: '2' }, ring: { type: 'string', default: '0' }, pause: { type: 'string', default: '300' }, tcp: { type: 'boolean', default: false }, out: { type: 'string' } } });
  const out = values.out ?? fs.mkdtempSync(path.join(os.tmpdir(), 'xway-profile-'));
  const mode = values.tcp ? 'tcp' : 'ring';
  const node = (role, ...args) => spawn(process.execPath, ['--cpu-prof', '--cpu-prof-dir', path.join(out, role), fileURLToPath(import.meta.url), '--role', role, ...args], { stdio: ['pipe', 'pipe', 'inherit'] });
  const server = node('server', '0', mode);
  const port = await new Promise((resolve) => server.stdout.once('data', (d) => resolve(Number(String(d).trim()))));
  const ring = /k$/i.test(values.ring) ? Number(values.ring.slice(0, -1)) * 1024 : Number(values.ring);
  const client = node('client', String(port), mode, values.parallel, values.seconds, String(ring), values.pause);
  const [count, rate] = await new Promise((resolve) => {
    client.stdout.once('data', (d) => resolve(String(d).trim().split(' ').map(Number)));
    client.once('exit', (code) => resolve([0, NaN, code]));
  });
  if (!count) {
    server.kill();
    throw new Error('the client failed (its error is above)');
  }
  await new Promise((resolve) => client.once('exit', resolve));
  server.stdin.end();
  await new Promise((resolve) => server.once('exit', resolve));
  console.log(`${mode}, ${values.parallel === '1' ? 'one at a time' : `${values.parallel} at once (rate over the bursts, pauses left out)`}: ${count} connections, ${rate} conn/s; profiles in ${out}`);
  for (const role of ['client', 'server']) {
    const file = fs.readdirSync(path.join(out, role)).find((f) => f.endsWith('.cpuprofile'));
    console.log(`\n${role}: heaviest functions by self time`);
    for (const line of summarize(JSON.parse(fs.readFileSync(path.join(out, role, file), 'utf8')))) console.log(`  ${line}`);
  }
}

/** Self time per function (name, file:line), the top 25, as lines. */
function summarize(profile) {
  const dt = new Map();
  const { samples, timeDeltas, nodes } = profile;
  const byId = new Map(nodes.map((n) => [n.id, n]));
  for (let i = 0; i < samples.length; i++) dt.set(samples[i], (dt.get(samples[i]) ?? 0) + (timeDeltas[i] ?? 0));
  const self = new Map();
  let total = 0;
  for (const [id, us] of dt) {
    const { callFrame: f } = byId.get(id);
    const key = `${f.functionName || '(anonymous)'} ${f.url ? `${f.url.replace(/^.*\/(dist|node_modules)\//, '$1/').replace(/^node:/, 'node:')}:${f.lineNumber + 1}` : ''}`.trim();
    self.set(key, (self.get(key) ?? 0) + us);
    total += us;
  }
  return [...self].sort((a, b) => b[1] - a[1]).slice(0, 25).map(([k, us]) => `${(100 * us / total).toFixed(1).padStart(5)}%  ${(us / 1000).toFixed(0).padStart(6)} ms  ${k}`);
}
