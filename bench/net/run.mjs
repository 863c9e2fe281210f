// `npm run bench:user` — the "user's code" benchmark: plain net programs (user-server.mjs,
// user-client.mjs: net.createServer / net.connect, 'data' handlers, write() + 'drain', the server
// in a child process of its own) run over TCP loopback (`node`) and over xway
// (`node --import xway/register`, default settings), and the raw host channel between the same
// two kinds of process (bench/ring's host busy-poll, 64 KiB writeFrom/readTo) in the same run,
// and the floors of the data path (floors.mjs: Node's stream machinery and the copies alone, in
// one process with no peer) beside the targets they bound.
// REPS repetitions, alternating the order; medians, ratios, and the 64 KiB spread.
// Options: --reps N (5), --duration S (1), --warmup S (0.2), --only stream64k,stream1k,rr,raw,floors --json
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { benchArgs } from '../args.mjs';
import { PEERS } from '../ring/peers.mjs';
import { runProcesses } from '../ring/processes.mjs';
import { summarize } from '../ring/stats.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../..');
const v = benchArgs({
  reps: { type: 'string', default: '5', numeric: true }, duration: { type: 'string', default: '1', numeric: true },
  warmup: { type: 'string', default: '0.2' }, only: { type: 'string' }, json: { type: 'boolean', default: false },
}, `usage: npm run bench:user -- [--reps N] [--duration S] [--warmup S] [--only stream64k,stream1k,rr,raw,floors] [--json]
  plain net programs over TCP loopback and under --import xway/register, the raw host channel and
  the data path's floors, in one run: medians of N alternating repetitions, ratios, the 64 KiB
  spread (docs/bench.md)`);
const reps = Number(v.reps), duration = Number(v.duration), warmup = Number(v.warmup);
const SCENARIOS = [
  { key: 'stream64k', mode: 'stream', chunk: 65536, title: 'stream 64 KiB', unit: 'GB/s' },
  { key: 'stream1k', mode: 'stream', chunk: 1024, title: 'stream 1 KiB', unit: 'GB/s' },
  { key: 'rr', mode: 'rr', chunk: 1, title: 'RR 1 B', unit: 'µs' },
];
const only = v.only ? v.only.split(',') : null;
const scenarios = SCENARIOS.filter((s) => !only || only.includes(s.key));
const withRaw = !only || only.includes('raw');
const withFloors = !only || only.includes('floors');
const FLOORS = [
  { key: 'floor.write1k', mode: 'write1k', title: '1 KiB writes into a stream that only copies them to shared memory' },
  { key: 'floor.read64k', mode: 'read64k', title: '64 KiB copies out of shared memory into fresh receive slabs' },
];
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xway-bench-user-'));
fs.chmodSync(dir, 0o700);

function node(script, ring, env, args = []) {
  const e = { ...process.env, XWAY_DIR: dir, WARM_MS: String(warmup * 1e3), DUR_MS: String(duration * 1e3), ...env };
  delete e.XWAY_DEBUG;
  delete e.XWAY;
  const child = spawn(process.execPath, [...(ring ? ['--import', 'xway/register'] : []), path.join(here, script), ...args],
    { cwd: root, env: e, stdio: ['ignore', 'pipe', 'inherit'] });
  const lines = [];
  const waiting = [];
  createInterface({ input: child.stdout }).on('line', (l) => { lines.push(l); waiting.splice(0).forEach((w) => w()); });
  const exited = new Promise((resolve) => child.once('exit', (code) => { child.exitCode_ = code; waiting.splice(0).forEach((w) => w()); resolve(code); }));
  child.line = (i) => new Promise((resolve, reject) => {
    const test = () => {
      if (lines.length > i) return resolve(lines[i]), true;
      if (child.exitCode_ !== undefined) return reject(new Error(`${script} exited with ${child.exitCode_}`)), true;
      return false;
    };
    if (!test()) waiting.push(test);
  });
  child.exited = exited;
  return child;
}

async function once(s, ring) {
  const env = { MODE: s.mode, CHUNK: String(s.chunk) };
  const server = node('user-server.mjs', ring, env);
  try {
    const port = await server.line(0);
    const client = node('user-client.mjs', ring, env, [port]);
    const c = JSON.parse(await client.line(0));
    await client.exited;
    if (s.mode === 'rr') return { value: c.medianUs, cpuPerTripUs: c.cpuS * 1e6 / c.timedTrips };
    const r = JSON.parse(await server.line(1));
    if (r.total !== c.sent) throw new Error(`sent ${c.sent}, received ${r.total}`);
    return { value: r.bytes / r.seconds / 1e9 };
  } finally {
    server.kill();
    await server.exited;
  }
}

async function floor(f) {
  const child = node('floors.mjs', false, { MODE: f.mode });
  const r = JSON.parse(await child.line(0));
  await child.exited;
  return r;
}

async function raw() {
  const peer = PEERS.find((p) => p.id === 'host-busy');
  const sock = path.join(dir, `raw-${Math.random().toString(36).slice(2)}.sock`);
  const r = await runProcesses(peer, { mode: 'stream', chunk: 65536 }, { warmup, duration },
    { capacity: 1 << 20, socketPath: sock, watchdogMs: (warmup + duration) * 1e3 + 20000 });
  if (r.consumer.bad || r.consumer.received !== r.producer.sent) throw new Error(`raw channel: ${r.consumer.bad} sampled bytes wrong, ${r.producer.sent} sent, ${r.consumer.received} received`);
  return { value: r.consumer.bytes / r.consumer.seconds / 1e9 };
}

const values = {};
const put = (k, x) => (values[k] ??= []).push(x);
try {
  for (let rep = 0; rep < reps; rep++) {
    for (const s of scenarios) {
      const order = rep % 2 === 0 ? [false, true] : [true, false];
      for (const ring of order) {
        const r = await once(s, ring);
        put(`${s.key}.${ring ? 'ring' : 'tcp'}`, r.value);
        if (r.cpuPerTripUs !== undefined) put(`${s.key}.${ring ? 'ring' : 'tcp'}.cpu`, r.cpuPerTripUs);
        if (!v.json) process.stderr.write(`rep ${rep + 1}/${reps} ${s.title} ${ring ? 'ring' : 'tcp '} ${r.value.toFixed(s.unit === 'µs' ? 1 : 3)} ${s.unit}\n`);
      }
    }
    if (withRaw) {
      const r = await raw();
      put('raw', r.value);
      if (!v.json) process.stderr.write(`rep ${rep + 1}/${reps} raw host channel 64 KiB ${r.value.toFixed(3)} GB/s\n`);
    }
    if (withFloors) {
      for (const f of FLOORS) {
        const r = await floor(f);
        put(f.key, r.value);
        if (!v.json) process.stderr.write(`rep ${rep + 1}/${reps} floor: ${f.title} ${r.value.toFixed(3)} GB/s\n`);
      }
    }
  }
} finally {
  fs.rmSync(dir, { recursive: true, force: true });
}

const sum = Object.fromEntries(Object.entries(values).map(([k, x]) => [k, { ...summarize(x), values: x }]));
const med = (k) => sum[k]?.median ?? NaN;
const out = { reps, duration, warmup, loadavg: os.loadavg(), summary: sum, ratios: {} };
for (const s of scenarios) {
  out.ratios[s.key] = s.unit === 'µs' ? med(`${s.key}.tcp`) / med(`${s.key}.ring`) : med(`${s.key}.ring`) / med(`${s.key}.tcp`);
}
if (withRaw && sum['stream64k.ring']) out.ratios.stream64kOfRaw = med('stream64k.ring') / med('raw');
if (sum['stream64k.ring']) {
  const m = med('stream64k.ring');
  out.spread64k = { low: sum['stream64k.ring'].min / m - 1, high: sum['stream64k.ring'].max / m - 1 };
}
if (v.json) {
  console.log(JSON.stringify(out, null, 2));
} else {
  const f = (x, unit) => (unit === 'µs' ? x.toFixed(1) : x.toFixed(3));
  const f3 = (x) => x.toFixed(3);
  console.log(`plain net code, server and client in two processes, median of ${reps} (${duration} s each), load ${os.loadavg().map((x) => x.toFixed(1)).join(' ')}:`);
  for (const s of scenarios) {
    const t = sum[`${s.key}.tcp`], r = sum[`${s.key}.ring`];
    console.log(`  ${s.title.padEnd(14)} TCP ${f(t.median, s.unit)} (${f(t.min, s.unit)}–${f(t.max, s.unit)}) ${s.unit}   xway ${f(r.median, s.unit)} (${f(r.min, s.unit)}–${f(r.max, s.unit)}) ${s.unit}   ${out.ratios[s.key].toFixed(2)}× TCP`);
    if (s.mode === 'rr') console.log(`  ${''.padEnd(14)} client CPU per round trip: TCP ${med('rr.tcp.cpu').toFixed(1)} µs, xway ${med('rr.ring.cpu').toFixed(1)} µs`);
  }
  if (withRaw) console.log(`  raw host channel 64 KiB (busy-poll) ${f(med('raw'), 'GB/s')} GB/s${out.ratios.stream64kOfRaw ? `; xway socket = ${(out.ratios.stream64kOfRaw * 100).toFixed(0)}% of it` : ''}`);
  if (out.spread64k) console.log(`  64 KiB xway spread: ${(out.spread64k.low * 100).toFixed(0)}% / +${(out.spread64k.high * 100).toFixed(0)}% of the median`);
  if (withFloors) {
    // What the targets ask, next to what the data path costs with no ring and no peer at all.
    const target = { 'floor.write1k': sum['stream1k.tcp'] && ['15× TCP', 15 * med('stream1k.tcp')], 'floor.read64k': withRaw && ['70% of raw', 0.7 * med('raw')] };
    console.log('  floors (one process, no ring, no peer; floors.mjs):');
    for (const f of FLOORS) {
      const t = target[f.key];
      console.log(`    ${f.title}: ${f3(med(f.key))} GB/s${t ? ` (the target, ${t[0]}: ${f3(t[1])} GB/s)` : ''}`);
    }
  }
}
