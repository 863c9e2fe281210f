// `npm run bench:ring`: stream throughput and 1-byte round-trip latency of the xway ring between
// two threads, next to ringbuf.js, MessagePort and a plain C ring (the machine's limit); and
// between two processes (a host channel, busy-polled or event-driven), next to TCP loopback and
// a Unix socket.
// Repetitions are interleaved across peers so that drift on a noisy machine hits all alike;
// only ratios measured in the same run mean much (see /work/shared/DESIGN.md).

import { execFile, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Worker } from 'node:worker_threads';
import { PEERS, SUITES } from './peers.mjs';
import { runProcesses } from './processes.mjs';
import { summarize } from './stats.mjs';
import { CONTROL_BYTES, FAILED, GO } from './control.mjs';

const here = (p) => fileURLToPath(new URL(p, import.meta.url));
const CAPACITY = 1 << 20;
const CHUNKS = [64, 1024, 65536];
const COLUMNS = [
  ...CHUNKS.map((chunk) => ({ key: `stream${chunk}`, mode: 'stream', chunk, title: `stream ${sizeName(chunk)}`, unit: 'GB/s',
    suites: chunk >= 1024 ? SUITES : ['threads'] })),
  { key: 'rr', mode: 'rr', chunk: 1, title: 'RR 1 B', unit: 'µs', suites: SUITES },
];
/** The data points of a suite (64-byte streams only between threads). */
const columnsOf = (suite) => COLUMNS.filter((c) => c.suites.includes(suite));
/** The two-thread peer the cross-process figures are compared with. */
const THREAD_REFERENCE = 'xway-copy';
/** A data point still running this long after its planned end is killed and counted as failed. */
const WATCHDOG_MS = 20000;

function sizeName(n) {
  return n >= 1024 ? `${n / 1024} KiB` : `${n} B`;
}

// ---- command line ----------------------------------------------------------------------------

const peerList = (suite) => PEERS.filter((p) => p.suite === suite).map((p) => `  ${p.id.padEnd(15)} ${p.note}`).join('\n');
const HELP = `Usage: node bench/ring/run.mjs [options]

Two threads (suite 'threads'): streams 64 B, 1 KiB and 64 KiB chunks through a 1 MiB ring
(GB/s = 1e9 B/s) and measures 1-byte busy-poll round trips (µs), for each peer:
${peerList('threads')}

Two processes (suite 'process'): streams 1 KiB and 64 KiB chunks one way (rings of 1 MiB) and
measures 1-byte round trips, for each peer:
${peerList('process')}

Options:
  --suite S         threads, process or all (default all); 'process' also runs '${THREAD_REFERENCE}'
                    (two threads), the reference of the cross-process targets
  --reps N          repetitions of every data point (default 5)
  --duration S      timed seconds per data point (default 0.5)
  --warmup S        untimed seconds before each data point, for the JIT (default 0.1)
  --only a,b        run only these peers (ids above, of any suite)
  --json            print machine-readable results on stdout instead of the table
  --quick           a ~35-second run (3 reps of 0.2 s unless given; without host-spin unless
                    --only names it)
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
        suite: { type: 'string' },
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
    duration: number('duration', parsed.duration, parsed.quick ? 0.2 : 0.5),
    warmup: number('warmup', parsed.warmup, 0.1, { zero: true }),
    suite: parsed.suite ?? 'all',
    peers: PEERS,
  };
  if (![...SUITES, 'all'].includes(o.suite)) usageError(`--suite must be one of ${[...SUITES, 'all'].join(', ')}, got '${o.suite}'`);
  const inSuite = (p) => o.suite === 'all' || p.suite === o.suite;
  if (parsed.only !== undefined) {
    const ids = parsed.only.split(',').map((s) => s.trim().toLowerCase()).filter(Boolean);
    const unknown = ids.filter((id) => !PEERS.some((p) => p.id === id && inSuite(p)));
    if (ids.length === 0 || unknown.length) {
      usageError(`--only: unknown peer '${unknown[0] ?? parsed.only}'${o.suite === 'all' ? '' : ` in suite ${o.suite}`} (peers: ${PEERS.filter(inSuite).map((p) => p.id).join(', ')})`);
    }
    o.peers = PEERS.filter((p) => ids.includes(p.id));
  } else {
    o.peers = PEERS.filter((p) => inSuite(p) || (o.suite === 'process' && p.id === THREAD_REFERENCE))
      .filter((p) => !(o.quick && p.full));
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

let socketDir;
let pointNumber = 0;

function runPoint(peer, col, o) {
  if (peer.native) return runC(col, o);
  if (peer.suite === 'process') {
    return runProcesses(peer, col, o, { capacity: CAPACITY, socketPath: join(socketDir, `p${++pointNumber}.sock`),
      watchdogMs: (o.warmup + o.duration) * 1e3 + WATCHDOG_MS });
  }
  return runWorkers(peer, col, o);
}

/** One data point: the value (GB/s or µs), or an error saying why it does not count. */
async function measure(peer, col, o) {
  const r = await runPoint(peer, col, o);
  if (col.mode === 'stream') {
    const c = r.consumer, sent = r.producer.sent;
    if (c.stuck || r.producer.stuck) throw new Error('stream stalled');
    if (c.bad) throw new Error(`${c.bad} sampled bytes wrong`);
    // (A consumer in another process learns the total only from the producer's report.)
    if (c.received !== sent || (c.sent !== undefined && c.sent !== sent)) throw new Error(`byte count mismatch: sent ${sent}, received ${c.received}`);
    if (!(c.bytes > 0 && c.seconds > 0)) throw new Error('nothing timed');
    return { value: c.bytes / c.seconds / 1e9, detail: { bytes: c.bytes, seconds: c.seconds } };
  }
  const p = r.ping;
  if (p.stuck || r.pong?.stuck) throw new Error('round trips stalled');
  if (p.bad) throw new Error(`${p.bad} echoed bytes wrong`);
  if (r.pong?.echoed !== undefined && r.pong.echoed !== p.trips) throw new Error(`ping counted ${p.trips} round trips, pong echoed ${r.pong.echoed} bytes`);
  if (!(p.samples > 0)) throw new Error('no round trips timed');
  return { value: p.medianUs, detail: { samples: p.samples, p10Us: p.p10Us, p90Us: p.p90Us } };
}

// ---- report ------------------------------------------------------------------------------------

function fmt(v, unit) {
  if (!Number.isFinite(v)) return '—';
  const digits = v < 1 ? 3 : v < 10 ? 2 : 1;
  return v.toFixed(digits);
}

const ratioText = (r) => (Number.isFinite(r) ? `${r < 0.1 ? r.toPrecision(2) : r.toFixed(r < 10 ? 2 : 1)}×` : '—');

function table(rows) {
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => [...r[c]].length)));
  return rows.map((r) => r.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]) : cell.padStart(widths[c]))).join('   ')).join('\n');
}

/** Targets from the brief, judged on medians of this run. `cmp` says how ratio must compare
 *  with `need`; `among` picks the best variant by median. */
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
    { name: '64 KiB stream ≥ 5× ringbuf.js', key: 'stream65536', vs: 'ringbuf', need: 5, cmp: '≥', among: xway },
    { name: '64 KiB stream ≥ 40% of C ring', key: 'stream65536', vs: 'c', need: 0.4, cmp: '≥', among: xway },
    { name: '1 KiB stream ≥ 3× ringbuf.js', key: 'stream1024', vs: 'ringbuf', need: 3, cmp: '≥', among: xway },
    { name: 'busy-poll RR ≤ 1.5× C ring', key: 'rr', vs: 'c', need: 1.5, cmp: '≤', among: ['xway-copy', 'xway-js'] },
    { name: 'processes: 64 KiB stream ≥ 0.8× threads', key: 'stream65536', vs: THREAD_REFERENCE, need: 0.8, cmp: '≥', among: ['host-busy'] },
    { name: 'processes: 1 KiB stream ≥ 0.8× threads', key: 'stream1024', vs: THREAD_REFERENCE, need: 0.8, cmp: '≥', among: ['host-busy'] },
    { name: 'processes: notified RR < TCP loopback', key: 'rr', vs: 'tcp', need: 1, cmp: '<', among: ['host-notify'] },
  ];
  return defs.map((d) => {
    const who = best(d.key, d.among);
    const ratio = who ? med(who, d.key) / med(d.vs, d.key) : NaN;
    const met = Number.isFinite(ratio) ? (d.cmp === '≥' ? ratio >= d.need : d.cmp === '≤' ? ratio <= d.need : ratio < d.need) : null;
    return { target: d.name, variant: who, against: d.vs, ratio, need: d.need, cmp: d.cmp, met,
      value: who ? med(who, d.key) : NaN, reference: med(d.vs, d.key) };
  });
}

function printReport(o, summary, failures, targets, seconds) {
  const peer = (id) => PEERS.find((p) => p.id === id);
  /** A thread peer named next to process peers says so. */
  const label = (id, among = 'threads') => (peer(id).suite === among ? peer(id).label : `${peer(id).label} (${peer(id).suite === 'threads' ? 'threads' : 'processes'})`);
  const cell = (id, c) => {
    const s = summary[id][c.key];
    if (!s.n) return 'FAILED';
    return `${fmt(s.median, c.unit)} (${fmt(s.min, c.unit)}–${fmt(s.max, c.unit)})${s.failed ? ` [${s.failed} failed]` : ''}`;
  };
  const out = [];
  out.push(`\nxway ring benchmark: 1 MiB rings, ${o.reps} rep(s) × ${o.duration} s (+${o.warmup} s warm-up) per point, ${seconds.toFixed(0)} s total`);
  out.push('cells: median (min–max) over repetitions; streams in GB/s (1e9 B/s, higher is better), RR median µs per 1-byte round trip (lower is better)');
  for (const suite of SUITES) {
    const peers = o.peers.filter((p) => p.suite === suite);
    if (!peers.length) continue;
    const cols = columnsOf(suite);
    out.push(suite === 'threads' ? '\ntwo threads, one process (RR busy-polled)\n' : '\ntwo processes, one host\n');
    const head = ['peer', ...cols.map((c) => `${c.title} (${c.unit})`)];
    out.push(table([head, ...peers.map((p) => [p.label, ...cols.map((c) => cell(p.id, c))])]));
  }

  const ratios = (title, pairs, cols) => {
    if (!pairs.length) return;
    out.push(`\n${title}\n`);
    const rows = [['', ...cols.map((c) => c.title)]];
    for (const [x, r] of pairs) {
      rows.push([`${x.label} vs ${label(r.id, x.suite)}`, ...cols.map((c) => ratioText(summary[x.id][c.key]?.median / summary[r.id][c.key]?.median))]);
    }
    out.push(table(rows));
  };
  const cross = (xs, rs) => xs.flatMap((x) => rs.map((r) => [x, r]));
  const threads = o.peers.filter((p) => p.suite === 'threads');
  ratios('ratios of medians, two threads (streams: xway ÷ peer, above 1 is faster; RR: xway ÷ peer, below 1 is faster)',
    cross(threads.filter((p) => p.id.startsWith('xway-')), threads.filter((p) => p.id === 'ringbuf' || p.id === 'c')),
    columnsOf('threads'));
  const hosts = o.peers.filter((p) => p.transport === 'xway');
  const hostRefs = o.peers.filter((p) => p.id === THREAD_REFERENCE || p.id === 'tcp' || p.id === 'unix');
  ratios('ratios of medians, two processes (streams: xway host ÷ peer, above 1 is faster; RR: below 1 is faster)',
    cross(hosts, hostRefs), columnsOf('process'));

  out.push('\ntargets (best xway variant by median; RR among xway copy and xway js; processes: busy-poll for streams, notify for RR)');
  for (const t of targets) {
    const verdict = t.met === null ? 'n/a (peer not run or failed)' : t.met ? 'MET' : 'NOT MET';
    const detail = t.met === null ? ''
      : `: ${label(t.variant, peer(t.variant).suite)} ${ratioText(t.ratio)} ${label(t.against, peer(t.variant).suite)} = ${fmt(t.value)} vs ${fmt(t.reference)} ${t.target.includes('RR') ? 'µs' : 'GB/s'} (need ${t.cmp} ${t.need}×)`;
    out.push(`  ${t.target.padEnd(41)} ${verdict}${detail}`);
  }
  out.push('\npeers:');
  for (const p of o.peers) out.push(`  ${p.label.padEnd(26)} ${p.note}`);
  if (failures.length) {
    out.push('\nfailed data points (not counted):');
    for (const f of failures) out.push(`  ${peer(f.peer).label} ${f.column} rep ${f.rep}: ${f.error}`);
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
  if (o.peers.some((p) => p.transport === 'xway')) {
    const { hostUnavailableReason } = await import('../../dist/index.js');
    const why = hostUnavailableReason();
    if (why) {
      process.stderr.write(`bench:ring: no host platform (${why}); skipping the xway host peers\n`);
      o.peers = o.peers.filter((p) => p.transport !== 'xway');
      if (!o.peers.length) process.exit(1);
    }
  }
  if (o.peers.some((p) => p.suite === 'process')) {
    socketDir = mkdtempSync(join(tmpdir(), 'xway-bench-'));
    // Ctrl-C reaches the children too (same process group); leave no socket directory behind.
    process.once('SIGINT', () => {
      rmSync(socketDir, { recursive: true, force: true });
      process.exit(130);
    });
  }

  // rep → column → peer, rotating the peer order each rep so no peer always runs first.
  const plan = [];
  for (let rep = 1; rep <= o.reps; rep++) {
    for (const col of COLUMNS) {
      const peers = o.peers.filter((p) => col.suites.includes(p.suite));
      for (let i = 0; i < peers.length; i++) plan.push({ rep, col, peer: peers[(i + rep - 1) % peers.length] });
    }
  }
  const columnsFor = (p) => columnsOf(p.suite);
  const values = Object.fromEntries(o.peers.map((p) => [p.id, Object.fromEntries(columnsFor(p).map((c) => [c.key, []]))]));
  const details = [];
  const failures = [];
  const started = performance.now();
  try {
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
  } finally {
    if (socketDir) rmSync(socketDir, { recursive: true, force: true });
  }
  const seconds = (performance.now() - started) / 1e3;

  const summary = {};
  for (const p of o.peers) {
    summary[p.id] = {};
    for (const c of columnsFor(p)) {
      summary[p.id][c.key] = { ...summarize(values[p.id][c.key]), unit: c.unit,
        failed: failures.filter((f) => f.peer === p.id && f.column === c.key).length };
    }
  }
  const targets = judgeTargets(summary);
  if (o.json) {
    const json = {
      capacity: CAPACITY, reps: o.reps, durationS: o.duration, warmupS: o.warmup, seconds,
      node: process.version, peers: o.peers.map(({ id, label, note, suite }) => ({ id, label, suite, note })),
      columns: COLUMNS.map(({ key, mode, chunk, unit, suites }) => ({ key, mode, chunk, unit, suites })),
      summary, targets, runs: details, failures,
    };
    process.stdout.write(JSON.stringify(json, null, 2) + '\n');
  } else {
    printReport(o, summary, failures, targets, seconds);
  }
  if (failures.length) process.exitCode = 1;
}

await main();
