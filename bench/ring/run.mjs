// `npm run bench:ring`: stream throughput and 1-byte round-trip latency of the xway ring between
// two threads, next to ringbuf.js, MessagePort and a plain C ring (the machine's limit).
// Repetitions are interleaved across peers so that drift on a noisy machine hits all alike;
// only ratios measured in the same run mean much (see /work/shared/DESIGN.md).

import { execFile, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Worker } from 'node:worker_threads';
import { PEERS } from './peers.mjs';
import { summarize } from './stats.mjs';
import { CONTROL_BYTES, FAILED, GO } from './control.mjs';

const here = (p) => fileURLToPath(new URL(p, import.meta.url));
const CAPACITY = 1 << 20;
const CHUNKS = [64, 1024, 65536];
const COLUMNS = [
  ...CHUNKS.map((chunk) => ({ key: `stream${chunk}`, mode: 'stream', chunk, title: `stream ${sizeName(chunk)}`, unit: 'GB/s' })),
  { key: 'rr', mode: 'rr', chunk: 1, title: 'RR 1 B', unit: 'µs' },
];
/** A data point still running this long after its planned end is killed and counted as failed. */
const WATCHDOG_MS = 20000;

function sizeName(n) {
  return n >= 1024 ? `${n / 1024} KiB` : `${n} B`;
}

// ---- command line ----------------------------------------------------------------------------

const HELP = `Usage: node bench/ring/run.mjs [options]

Streams 64 B, 1 KiB and 64 KiB chunks through a 1 MiB ring between two threads (GB/s = 1e9 B/s)
and measures 1-byte busy-poll round trips (µs) for each peer:
${PEERS.map((p) => `  ${p.id.padEnd(15)} ${p.note}`).join('\n')}

Options:
  --reps N          repetitions of every data point (default 5)
  --duration S      timed seconds per data point (default 0.5)
  --warmup S        untimed seconds before each data point, for the JIT (default 0.1)
  --only a,b        run only these peers (ids above)
  --json            print machine-readable results on stdout instead of the table
  --quick           a ~30-second run (3 reps of 0.25 s unless given)
  --help            this text`;

function usageError(message) {
  process.stderr.write(`bench:ring: ${message}\nRun with --help for the options.\n`);
  process.exit(2);
}

function parseOptions(argv) {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        reps: { type: 'string' },
        duration: { type: 'string' },
        warmup: { type: 'string' },
        only: { type: 'string' },
        json: { type: 'boolean', default: false },
        quick: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
    }).values;
  } catch (err) {
    usageError(err.message);
  }
  const number = (flag, text, fallback, { integer = false, zero = false } = {}) => {
    if (text === undefined) return fallback;
    const v = Number(text);
    if (text.trim() === '' || !Number.isFinite(v) || v < 0 || (v === 0 && !zero) || (integer && !Number.isInteger(v))) {
      const what = integer ? 'a positive integer' : zero ? 'a number of seconds ≥ 0' : 'a number of seconds > 0';
      usageError(`--${flag} must be ${what}, got '${text}'`);
    }
    return v;
  };
  const o = {
    help: parsed.help,
    json: parsed.json,
    quick: parsed.quick,
    reps: number('reps', parsed.reps, parsed.quick ? 3 : 5, { integer: true }),
    duration: number('duration', parsed.duration, parsed.quick ? 0.25 : 0.5),
    warmup: number('warmup', parsed.warmup, 0.1, { zero: true }),
    peers: PEERS,
  };
  if (parsed.only !== undefined) {
    const ids = parsed.only.split(',').map((s) => s.trim().toLowerCase()).filter(Boolean);
    const unknown = ids.filter((id) => !PEERS.some((p) => p.id === id));
    if (ids.length === 0 || unknown.length) {
      usageError(`--only: unknown peer '${unknown[0] ?? parsed.only}' (peers: ${PEERS.map((p) => p.id).join(', ')})`);
    }
    o.peers = PEERS.filter((p) => ids.includes(p.id));
  }
  return o;
}

// ---- running one data point --------------------------------------------------------------------

/** Runs one peer's two workers for one data point; resolves to both sides' results. */
async function runWorkers(peer, col, o) {
  const control = new SharedArrayBuffer(CONTROL_BYTES);
  const ctl = new Int32Array(control);
  const { shared = {}, perRole = [{}, {}], transfer = [[], []] } = peer.setup({ capacity: CAPACITY, maxChunk: Math.max(...CHUNKS) });
  const roles = col.mode === 'stream' ? ['producer', 'consumer'] : ['ping', 'pong'];
  const base = { ...shared, mode: col.mode, chunk: col.chunk, capacity: CAPACITY, warmMs: o.warmup * 1e3, durMs: o.duration * 1e3, control };
  const workers = [];
  const exited = [];
  const readyCount = countdown(roles.length, () => {
    Atomics.store(ctl, GO, 1); // both sides are set up and blocked on this word
    Atomics.notify(ctl, GO);
  });
  const settled = roles.map((role, i) => new Promise((resolve, reject) => {
    const w = new Worker(here(`./workers/${peer.script}`), { workerData: { ...base, ...perRole[i], role }, transferList: transfer[i] });
    workers.push(w);
    let result;
    w.on('message', (m) => {
      if (m.ready) readyCount.hit();
      if (m.result) result = m.result;
    });
    w.on('error', reject);
    exited.push(new Promise((done) => w.on('exit', (code) => {
      if (result) resolve(result);
      else reject(new Error(`${role} worker exited (code ${code}) without a result`));
      done();
    })));
  }));
  let timer;
  const watchdog = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error('watchdog: no result in time')), (o.warmup + o.duration) * 1e3 + WATCHDOG_MS);
  });
  try {
    const results = await Promise.race([Promise.all(settled), watchdog]);
    return Object.fromEntries(roles.map((r, i) => [r, results[i]]));
  } finally {
    clearTimeout(timer);
    Atomics.store(ctl, FAILED, 1); // tells a side still spinning to give up
    for (const w of workers) w.terminate(); // no-op for workers that already finished
    await Promise.all(exited);
  }
}

function countdown(n, fire) {
  return { hit: () => { if (--n === 0) fire(); } };
}

let cBinary;

/** Compiles c/spsc.c into .build/ when the binary is missing or older than the source. */
function buildC() {
  const src = here('./c/spsc.c');
  const out = here('./.build/spsc');
  if (existsSync(out) && statSync(out).mtimeMs >= statSync(src).mtimeMs) return out;
  mkdirSync(here('./.build/'), { recursive: true });
  const cc = process.env.CC || 'cc';
  const r = spawnSync(cc, ['-O2', '-pthread', '-std=c11', '-o', out, src], { encoding: 'utf8' });
  if (r.status !== 0) {
    throw new Error(`building the C ring failed (${cc} -O2 -pthread): ${r.error?.message ?? r.stderr.trim()}`);
  }
  return out;
}

function runC(col, o) {
  const ms = [String(o.warmup * 1e3), String(o.duration * 1e3)];
  const args = col.mode === 'stream' ? ['stream', String(col.chunk), String(CAPACITY), ...ms] : ['rr', String(CAPACITY), ...ms];
  return new Promise((resolve, reject) => {
    execFile(cBinary, args, { timeout: (o.warmup + o.duration) * 1e3 + WATCHDOG_MS }, (err, stdout, stderr) => {
      let r;
      try { r = JSON.parse(stdout); } catch { return reject(err ?? new Error(`C ring printed no JSON: ${stderr}`)); }
      resolve(col.mode === 'stream'
        ? { consumer: { ...r, sent: r.sent, stuck: !r.ok }, producer: { sent: r.sent } }
        : { ping: { ...r, stuck: !r.ok } });
    });
  });
}

/** One data point: the value (GB/s or µs), or an error saying why it does not count. */
async function measure(peer, col, o) {
  const r = peer.native ? await runC(col, o) : await runWorkers(peer, col, o);
  if (col.mode === 'stream') {
    const c = r.consumer, sent = r.producer.sent;
    if (c.stuck) throw new Error('stream stalled');
    if (c.bad) throw new Error(`${c.bad} sampled bytes wrong`);
    if (c.received !== sent || c.sent !== sent) throw new Error(`byte count mismatch: sent ${sent}, received ${c.received}`);
    if (!(c.bytes > 0 && c.seconds > 0)) throw new Error('nothing timed');
    return { value: c.bytes / c.seconds / 1e9, detail: { bytes: c.bytes, seconds: c.seconds } };
  }
  const p = r.ping;
  if (p.stuck) throw new Error('round trips stalled');
  if (p.bad) throw new Error(`${p.bad} echoed bytes wrong`);
  if (!(p.samples > 0)) throw new Error('no round trips timed');
  return { value: p.medianUs, detail: { samples: p.samples, p10Us: p.p10Us, p90Us: p.p90Us } };
}

// ---- report ------------------------------------------------------------------------------------

function fmt(v, unit) {
  if (!Number.isFinite(v)) return '—';
  const digits = v < 1 ? 3 : v < 10 ? 2 : 1;
  return v.toFixed(digits);
}

const ratioText = (r) => (Number.isFinite(r) ? `${r.toFixed(r < 10 ? 2 : 1)}×` : '—');

function table(rows) {
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => [...r[c]].length)));
  return rows.map((r) => r.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]) : cell.padStart(widths[c]))).join('   ')).join('\n');
}

/** Targets from the brief, judged on medians of this run. */
function judgeTargets(summary) {
  const med = (id, key) => summary[id]?.[key]?.median ?? NaN;
  const best = (key, ids) => {
    const c = ids.filter((id) => Number.isFinite(med(id, key)));
    if (!c.length) return null;
    const lowerBetter = key === 'rr';
    return c.reduce((a, b) => ((lowerBetter ? med(b, key) < med(a, key) : med(b, key) > med(a, key)) ? b : a));
  };
  const xway = ['xway-copy', 'xway-js', 'xway-zero-copy'];
  const defs = [
    { name: '64 KiB stream ≥ 5× ringbuf.js', key: 'stream65536', vs: 'ringbuf', need: 5, higher: true, among: xway },
    { name: '64 KiB stream ≥ 40% of C ring', key: 'stream65536', vs: 'c', need: 0.4, higher: true, among: xway },
    { name: '1 KiB stream ≥ 3× ringbuf.js', key: 'stream1024', vs: 'ringbuf', need: 3, higher: true, among: xway },
    { name: 'busy-poll RR ≤ 1.5× C ring', key: 'rr', vs: 'c', need: 1.5, higher: false, among: ['xway-copy', 'xway-js'] },
  ];
  return defs.map((d) => {
    const who = best(d.key, d.among);
    const ratio = who ? med(who, d.key) / med(d.vs, d.key) : NaN;
    const met = Number.isFinite(ratio) ? (d.higher ? ratio >= d.need : ratio <= d.need) : null;
    return { target: d.name, variant: who, against: d.vs, ratio, need: d.need, met,
      value: who ? med(who, d.key) : NaN, reference: med(d.vs, d.key) };
  });
}

function printReport(o, summary, failures, targets, seconds) {
  const label = (id) => PEERS.find((p) => p.id === id).label;
  const out = [];
  out.push(`\nxway ring benchmark: 1 MiB ring, two threads, ${o.reps} rep(s) × ${o.duration} s (+${o.warmup} s warm-up) per point, ${seconds.toFixed(0)} s total`);
  out.push('cells: median (min–max) over repetitions; streams in GB/s (1e9 B/s, higher is better), RR median µs per 1-byte round trip (lower is better)\n');
  const head = ['peer', ...COLUMNS.map((c) => `${c.title} (${c.unit})`)];
  const rows = o.peers.map((p) => [p.label, ...COLUMNS.map((c) => {
    const s = summary[p.id][c.key];
    if (!s.n) return 'FAILED';
    return `${fmt(s.median, c.unit)} (${fmt(s.min, c.unit)}–${fmt(s.max, c.unit)})${s.failed ? ` [${s.failed} failed]` : ''}`;
  })]);
  out.push(table([head, ...rows]));

  const xways = o.peers.filter((p) => p.id.startsWith('xway-'));
  const refs = o.peers.filter((p) => p.id === 'ringbuf' || p.id === 'c');
  if (xways.length && refs.length) {
    out.push('\nratios of medians (streams: xway ÷ peer, above 1 is faster; RR: xway ÷ peer, below 1 is faster)\n');
    const rr = [['', ...COLUMNS.map((c) => c.title)]];
    for (const x of xways) for (const r of refs) {
      rr.push([`${x.label} vs ${r.label}`, ...COLUMNS.map((c) => ratioText(summary[x.id][c.key].median / summary[r.id][c.key].median))]);
    }
    out.push(table(rr));
  }

  out.push('\ntargets (best xway variant by median; RR among xway copy and xway js)');
  for (const t of targets) {
    const verdict = t.met === null ? 'n/a (peer not run or failed)' : t.met ? 'MET' : 'NOT MET';
    const detail = t.met === null ? '' : `: ${label(t.variant)} ${ratioText(t.ratio)} ${label(t.against)} (need ${t.target.includes('≤') ? '≤' : '≥'} ${t.need}×)`;
    out.push(`  ${t.target.padEnd(32)} ${verdict}${detail}`);
  }
  out.push('\npeers:');
  for (const p of o.peers) out.push(`  ${p.label.padEnd(15)} ${p.note}`);
  if (failures.length) {
    out.push('\nfailed data points (not counted):');
    for (const f of failures) out.push(`  ${f.peer} ${f.column} rep ${f.rep}: ${f.error}`);
  }
  process.stdout.write(out.join('\n') + '\n');
}

// ---- main --------------------------------------------------------------------------------------

async function main() {
  const o = parseOptions(process.argv.slice(2));
  if (o.help) {
    process.stdout.write(HELP + '\n');
    return;
  }
  if (o.peers.some((p) => p.native)) {
    try {
      cBinary = buildC();
    } catch (err) {
      process.stderr.write(`bench:ring: ${err.message}; skipping the C ring\n`);
      o.peers = o.peers.filter((p) => !p.native);
      if (!o.peers.length) process.exit(1);
    }
  }

  // rep → column → peer, rotating the peer order each rep so no peer always runs first.
  const plan = [];
  for (let rep = 1; rep <= o.reps; rep++) {
    for (const col of COLUMNS) {
      for (let i = 0; i < o.peers.length; i++) plan.push({ rep, col, peer: o.peers[(i + rep - 1) % o.peers.length] });
    }
  }
  const values = Object.fromEntries(o.peers.map((p) => [p.id, Object.fromEntries(COLUMNS.map((c) => [c.key, []]))]));
  const details = [];
  const failures = [];
  const started = performance.now();
  for (const [i, { rep, col, peer }] of plan.entries()) {
    process.stderr.write(`[${i + 1}/${plan.length}] ${peer.label} ${col.title} rep ${rep}/${o.reps} … `);
    try {
      const { value, detail } = await measure(peer, col, o);
      values[peer.id][col.key].push(value);
      details.push({ peer: peer.id, column: col.key, rep, value, ...detail });
      process.stderr.write(`${fmt(value, col.unit)} ${col.unit}\n`);
    } catch (err) {
      failures.push({ peer: peer.id, column: col.key, rep, error: err.message });
      process.stderr.write(`FAILED: ${err.message}\n`);
    }
  }
  const seconds = (performance.now() - started) / 1e3;

  const summary = {};
  for (const p of o.peers) {
    summary[p.id] = {};
    for (const c of COLUMNS) {
      summary[p.id][c.key] = { ...summarize(values[p.id][c.key]), unit: c.unit,
        failed: failures.filter((f) => f.peer === p.id && f.column === c.key).length };
    }
  }
  const targets = judgeTargets(summary);
  if (o.json) {
    const json = {
      capacity: CAPACITY, reps: o.reps, durationS: o.duration, warmupS: o.warmup, seconds,
      node: process.version, peers: o.peers.map(({ id, label, note }) => ({ id, label, note })),
      columns: COLUMNS.map(({ key, mode, chunk, unit }) => ({ key, mode, chunk, unit })),
      summary, targets, runs: details, failures,
    };
    process.stdout.write(JSON.stringify(json, null, 2) + '\n');
  } else {
    printReport(o, summary, failures, targets, seconds);
  }
  if (failures.length) process.exitCode = 1;
}

await main();
