// `xway bench`: netperf for rings. Runs stream, maerts, rr and crr over the xway ring, TCP
// loopback and a Unix socket — all through the net API, between two processes (or two worker
// threads) — repeats every data point, and reports medians, spread, ratios to TCP and the CPU
// time each transport spends per GB and per 1,000 transactions.
//
// Repetitions are the outer loop and the transport order rotates from one to the next, so drift
// on a noisy machine hits every transport alike; only ratios measured in one run mean much.

import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { CommandError, parseFlags, parseList, parseNumber, parseSize, sizeName, UsageError } from '../args.js';
import { hostUnavailableReason } from '../../platform/host/native.js';
import { Peer, servePeers } from './peers.js';
import { Progress } from './progress.js';
import { DEFAULT_TESTS, TESTS, TRANSPORTS, type SideResult, type Spec, type SpecTest, type TestName, type TransportName } from './spec.js';
import { connsResults, measure100k, measureConns, type ConnsPart, type ConnsPoint } from './conns.js';
import { summarize, type Summary } from './stats.js';
import { renderSvg } from './svg.js';
import { judgeTargets, formatTargets, type IdleResult } from './targets.js';
import { formatReport } from './report.js';
import { createNetnsPair, netnsUnavailableReason, registryDirIn, type NetnsPair } from './netns.js';

export const BENCH_HELP = `Usage: xway bench [options]

netperf for rings: measures socket traffic through the net API between two processes (or two
worker threads) over the xway ring, TCP loopback (127.0.0.1) and a Unix socket, side by side.

Tests (--test):
  stream   the client writes --size chunks as fast as backpressure allows; the server counts
           bytes (GB/s = 1e9 bytes/s, higher is better)
  maerts   the same, server to client
  rr       request/response: --request bytes out, --response bytes back, one at a time
           (mean round trip in µs, lower is better; and transactions/s)
  crr      connect, request, response, close, one at a time (connections/s, higher is better)
  conns    connections at scale, ring against TCP: --parallel clients at once, each connect,
           1 B request, 1 B response, close (connections/s); then one connection and
           --connections more held open: the descriptors they add in each process, an echo of
           4 KiB on each (every byte checked), the resident memory per idle connection in each
           process (and its shared part), and the CPU of the idle processes (~10 s a repetition)
  conns100k  100,000 ring connections (--connections) with 16 KiB rings (or --ring) into one
           server process on several ports, from 4 client processes: set-up time and memory
           per connection (ring only; not in any preset: ~25 s a repetition)
Each also reports the CPU time of both ends: CPU seconds per GB (streams) or per 1,000
transactions (rr, crr).

Options:
  --test LIST        stream,maerts,rr,crr,conns,conns100k (default: the first four)
  --size LIST        write sizes for stream and maerts, units k, m (default 64,1k,16k,64k,1m)
  --request SIZE     rr/crr request size (default 1)
  --response SIZE    rr/crr response size (default 1)
  --transport LIST   ring,tcp,unix (default: all three)
  --duration S       measured seconds per data point (default 1)
  --warmup S         unmeasured seconds before each (default 0.2)
  --reps N           repetitions of every data point (default 3)
  --ring SIZE        ring capacity each direction (default: xway's, 256k; conns100k: 16k)
  --connections N    conns: connections held open after the first (default 10000); conns100k:
                     connections in all (default 100000)
  --parallel N       conns: clients connecting at once (default 1000)
  --threads          the two ends are worker threads of one process, not two processes
                     (CPU time is then the whole process's)
  --netns            the two processes in two network namespaces joined by a veth pair, as two
                     containers on one host: TCP crosses the veth (192.0.2.102 → 192.0.2.101)
                     instead of loopback (needs root; src/cli/bench/netns.ts)
  --idle             also measure an idle connection: both ends' CPU time over --duration
  --targets          judge the socket layer's targets (64 KiB stream ≥ 4× TCP, 1 KiB ≥ 8×, rr ≤ 1/6,
                     crr ≤ 0.5× TCP's time, idle connection uses no CPU; with conns: 10,000
                     connections after the first add no descriptor, parallel connections/s ≥ 2×
                     TCP's, an idle link uses no CPU)
  --preset NAME      quick: ring vs TCP, stream 1k and 64k, rr (~30 s; npm start)
                     net: stream 1k and 64k, rr, crr, conns, 5 reps, with --idle and --targets
                     (npm run bench:net)
                     (flags given as well override the preset's)
  --peer HOST:PORT   the server end runs elsewhere: a peer started there with
                     --peer-listen (say, in another Xen domain); connections go to HOST (ring:
                     xway.connect to HOST, a Xen channel where the administrator recorded HOST
                     for a co-resident domain; tcp: TCP to HOST); ring and tcp only
  --peer-listen [HOST:]PORT
                     serve bench peers to coordinators elsewhere (one per control connection,
                     until killed); every other flag is the coordinator's
  --json             machine-readable results on stdout instead of the table
  --svg FILE         also draw throughput against write size and the rr/crr times as an SVG
  --quiet            no progress line on stderr
  -h, --help         this text

Examples:
  xway bench --test stream --size 1k,64k --transport ring,tcp
  xway bench --test rr --request 100 --response 2k --duration 3 --reps 5
  xway bench --preset net --json > net.json
  xway bench --test stream,maerts --svg stream.svg
  xway bench --peer-listen 9100                       # in domain A (192.0.2.2)
  xway bench --peer 192.0.2.2:9100 --test stream,rr   # in domain B`;

export interface BenchOptions {
  tests: TestName[];
  sizes: number[];
  request: number;
  response: number;
  transports: TransportName[];
  duration: number;
  warmup: number;
  reps: number;
  ring: number;
  /** conns: connections after the first (scale); conns100k: connections in all. */
  connections: number;
  connections100k: number;
  /** conns: clients connecting at once. */
  parallel: number;
  threads: boolean;
  netns: boolean;
  idle: boolean;
  targets: boolean;
  preset: string | null;
  json: boolean;
  svg: string | null;
  quiet: boolean;
  /** --peer: the remote server peer's control address. */
  peer: { host: string; port: number } | null;
  /** --peer-listen: serve peers instead of measuring. */
  peerListen: { host: string; port: number } | null;
}

const PRESETS: Record<string, Partial<BenchOptions>> = {
  quick: { tests: ['stream', 'rr'], sizes: [1024, 65536], transports: ['ring', 'tcp'], duration: 1, warmup: 0.2, reps: 4 },
  net: { tests: ['stream', 'rr', 'crr', 'conns'], sizes: [1024, 65536], transports: ['ring', 'tcp', 'unix'], duration: 1, warmup: 0.2, reps: 5, idle: true, targets: true },
};

export function parseBenchOptions(argv: string[]): BenchOptions | null {
  const { values: v } = parseFlags(argv, {
    test: { type: 'string' }, size: { type: 'string' }, request: { type: 'string' }, response: { type: 'string' },
    transport: { type: 'string' }, duration: { type: 'string' }, warmup: { type: 'string' }, reps: { type: 'string' },
    ring: { type: 'string' }, connections: { type: 'string' }, parallel: { type: 'string' }, threads: { type: 'boolean' }, netns: { type: 'boolean' },
    idle: { type: 'boolean' }, targets: { type: 'boolean' },
    preset: { type: 'string' }, json: { type: 'boolean' }, svg: { type: 'string' }, quiet: { type: 'boolean' },
    peer: { type: 'string' }, 'peer-listen': { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  });
  if (v.help) return null;
  let preset: Partial<BenchOptions> = {};
  if (v.preset !== undefined) {
    if (!Object.hasOwn(PRESETS, v.preset)) throw new UsageError(`flag '--preset': unknown preset '${v.preset}' (one of ${Object.keys(PRESETS).join(', ')})`);
    preset = PRESETS[v.preset];
  }
  const o: BenchOptions = {
    tests: v.test !== undefined ? TESTS.filter((t) => parseList('test', v.test!, TESTS).includes(t)) : preset.tests ?? [...DEFAULT_TESTS],
    sizes: v.size !== undefined ? v.size.split(',').filter((s) => s.trim()).map((s) => parseSize('size', s)) : preset.sizes ?? [64, 1024, 16384, 65536, 1 << 20],
    request: v.request !== undefined ? parseSize('request', v.request) : 1,
    response: v.response !== undefined ? parseSize('response', v.response) : 1,
    transports: v.transport !== undefined ? TRANSPORTS.filter((t) => parseList('transport', v.transport!, TRANSPORTS).includes(t)) : preset.transports ?? [...TRANSPORTS],
    duration: v.duration !== undefined ? parseNumber('duration', v.duration) : preset.duration ?? 1,
    warmup: v.warmup !== undefined ? parseNumber('warmup', v.warmup, { zero: true }) : preset.warmup ?? 0.2,
    reps: v.reps !== undefined ? parseNumber('reps', v.reps, { integer: true }) : preset.reps ?? 3,
    ring: v.ring !== undefined ? parseSize('ring', v.ring) : 0,
    connections: v.connections !== undefined ? parseNumber('connections', v.connections, { integer: true }) : 10_000,
    connections100k: v.connections !== undefined ? parseNumber('connections', v.connections, { integer: true }) : 100_000,
    parallel: v.parallel !== undefined ? parseNumber('parallel', v.parallel, { integer: true }) : 1000,
    threads: v.threads ?? false,
    netns: v.netns ?? false,
    idle: v.idle ?? preset.idle ?? false,
    targets: v.targets ?? preset.targets ?? false,
    preset: v.preset ?? null,
    json: v.json ?? false,
    svg: v.svg ?? null,
    quiet: v.quiet ?? false,
    peer: v.peer !== undefined ? parseHostPort('peer', v.peer, false) : null,
    peerListen: v['peer-listen'] !== undefined ? parseHostPort('peer-listen', v['peer-listen'], true) : null,
  };
  if (o.peer) {
    if (o.threads) throw new UsageError(`flag '--peer' and '--threads' exclude each other`);
    if (o.idle) throw new UsageError(`flag '--peer' does not measure --idle`);
    if (o.netns) throw new UsageError(`flags '--peer' and '--netns' exclude each other`);
    if (o.tests.some((t) => t === 'conns' || t === 'conns100k')) throw new UsageError(`flag '--peer': conns and conns100k measure two processes on this machine`);
    if (v.transport !== undefined && o.transports.includes('unix')) throw new UsageError(`flag '--peer': a Unix socket does not reach another machine or domain (ring, tcp)`);
    o.transports = o.transports.filter((t) => t !== 'unix');
  }
  if (v.size !== undefined && o.sizes.length === 0) throw new UsageError(`flag '--size' needs at least one size`);
  o.sizes = [...new Set(o.sizes)].sort((a, b) => a - b);
  if (o.ring && (o.ring & (o.ring - 1)) !== 0) throw new UsageError(`flag '--ring' must be a power of two between 4k and 16m, got ${o.ring}`);
  if (o.ring && (o.ring < 4096 || o.ring > 16 << 20)) throw new UsageError(`flag '--ring' must be between 4k and 16m, got ${sizeName(o.ring)}`);
  if (o.svg === '') throw new UsageError(`flag '--svg' needs a file name`);
  if (o.netns && o.threads) throw new UsageError(`flags '--netns' and '--threads' exclude each other: threads share one network namespace`);
  if (o.threads && o.tests.some((t) => t === 'conns' || t === 'conns100k')) throw new UsageError(`flag '--threads': conns and conns100k measure two processes`);
  if (o.netns && o.tests.some((t) => t === 'conns' || t === 'conns100k')) throw new UsageError(`flag '--netns': conns and conns100k measure two processes on loopback`);
  return o;
}

/** 'host:port' (or, where `hostOptional`, 'port': every address). */
function parseHostPort(flag: string, text: string, hostOptional: boolean): { host: string; port: number } {
  const m = /^(?:\[?([^\]]*?)\]?:)?(\d+)$/.exec(text.trim());
  const port = m ? Number(m[2]) : NaN;
  if (!m || !(port >= (hostOptional ? 0 : 1) && port < 65536) || (!hostOptional && !m[1])) {
    throw new UsageError(`flag '--${flag}' takes ${hostOptional ? '[HOST:]PORT' : 'HOST:PORT'}, got '${text}'`);
  }
  return { host: m[1] || '0.0.0.0', port };
}

// ---- one data point ----------------------------------------------------------------------------

/** One measurement's figures: the headline value and the CPU cost. */
export interface Point {
  value: number;
  /** rr: transactions/s; crr: µs per connection; streams: none. */
  second?: number;
  /** CPU seconds per GB (streams) or per 1,000 transactions (rr, crr). */
  cpu: number;
  /** Each side's CPU, as a fraction of one CPU over its window. */
  cpuClient: number;
  cpuServer: number;
  transport: { client: string; server: string };
  p99Us?: number;
}

class Pair {
  server: Peer;
  client: Peer;
  /** `netns` (--netns): each peer in its namespace; `remote` (--peer): the server runs elsewhere. */
  constructor(readonly threads: boolean, netns: NetnsPair | null = null, readonly remote: { host: string; port: number } | null = null) {
    this.server = new Peer('server', threads, { launch: netns?.server, remote });
    this.client = new Peer('client', threads, { launch: netns?.client });
  }
  async ready(): Promise<void> {
    await Promise.all([this.server.ready, this.client.ready]);
  }
  async close(): Promise<void> {
    await Promise.all([this.server.close(), this.client.close()]);
  }
  kill(): void {
    this.server.kill();
    this.client.kill();
  }
}

let requestId = 0;

async function runSpec(pair: Pair, spec: Spec): Promise<{ client: SideResult; server: SideResult }> {
  const id = ++requestId;
  const budget = spec.warmupMs + spec.durationMs + 20_000;
  const listening = await pair.server.request({ type: 'serve', id, spec }, 10_000);
  if (!('listening' in listening)) throw new Error('server peer did not listen');
  const client = await pair.client.request({ type: 'run', id, spec, address: listening.listening }, budget);
  const server = await pair.server.request({ type: 'stop', id }, 20_000);
  if (!('result' in client) || !('result' in server)) throw new Error('a peer answered without a result');
  return { client: client.result, server: server.result };
}

function toPoint(spec: Spec, r: { client: SideResult; server: SideResult }, threads: boolean): Point {
  const transport = { client: r.client.transport, server: r.server.transport };
  if (spec.transport === 'ring' && (transport.client !== 'ring' || transport.server !== 'ring')) {
    throw new Error(`ring asked for, but the client was carried by ${transport.client} and the server by ${transport.server}`);
  }
  // Between threads both report the same process's CPU time: count it once.
  const rate = threads ? r.client.cpu.rate : r.client.cpu.rate + r.server.cpu.rate;
  const base = { cpuClient: r.client.cpu.rate, cpuServer: r.server.cpu.rate, transport };
  if (spec.test === 'stream' || spec.test === 'maerts') {
    const [receiver, sender] = spec.test === 'stream' ? [r.server, r.client] : [r.client, r.server];
    if (receiver.total !== sender.total) throw new Error(`byte count mismatch: sent ${sender.total}, received ${receiver.total}`);
    if (!(receiver.bytes! > 0 && receiver.seconds! > 0)) throw new Error('nothing was timed');
    const gbps = receiver.bytes! / receiver.seconds! / 1e9;
    return { value: gbps, cpu: rate / gbps, ...base };
  }
  const c = r.client;
  if (!(c.transactions! > 0 && c.seconds! > 0)) throw new Error('no transaction was timed');
  const tps = c.transactions! / c.seconds!;
  const cpu = (rate / tps) * 1000;
  if (spec.test === 'rr') return { value: 1e6 / tps, second: tps, cpu, p99Us: c.p99Us, ...base };
  return { value: tps, second: 1e6 / tps, cpu, p99Us: c.p99Us, ...base };
}

// ---- the plan and the run ------------------------------------------------------------------------

export interface Row {
  test: TestName;
  /** stream/maerts: write size; rr/crr: 0 (request/response apply). */
  size: number;
  transport: TransportName;
  /** conns: which part of it (conns.ts). */
  part?: ConnsPart;
}

export const rowKey = (r: Row) => `${r.test}/${r.size}/${r.transport}${r.part ? `/${r.part}` : ''}`;

export interface Result extends Row {
  /** conns: the figure this result is (conns.ts CONNS_METRICS). */
  metric?: string;
  unit: string;
  better: 'higher' | 'lower';
  value: Summary;
  values: number[];
  second?: { unit: string; median: number };
  cpu: { unit: string; median: number; min: number; max: number };
  cpuShare: { client: number; server: number };
  p99Us?: number;
  /** What carried the connections, as socket.transport said on both ends. */
  carriedBy: string[];
  ratioToTcp: number | null;
  failed: number;
}

export const UNITS: Record<TestName, { unit: string; better: 'higher' | 'lower'; second?: string; cpu: string }> = {
  stream: { unit: 'GB/s', better: 'higher', cpu: 'CPU s/GB' },
  maerts: { unit: 'GB/s', better: 'higher', cpu: 'CPU s/GB' },
  rr: { unit: 'µs', better: 'lower', second: 'tx/s', cpu: 'CPU s/1k tx' },
  crr: { unit: 'conn/s', better: 'higher', second: 'µs/conn', cpu: 'CPU s/1k tx' },
  conns: { unit: 'conn/s', better: 'higher', cpu: 'CPU s/1k conn' },
  conns100k: { unit: 's', better: 'lower', cpu: 'CPU s/1k conn' },
};

export interface Failure extends Row {
  rep: number;
  error: string;
}

export interface BenchOutput {
  xway: string;
  node: string;
  machine: { cpus: number; model: string; arch: string; kernel: string; memoryGB: number };
  command: string;
  options: BenchOptions;
  seconds: number;
  results: Result[];
  idle: IdleResult[] | null;
  targets: ReturnType<typeof judgeTargets> | null;
  failures: Failure[];
}

function specFor(row: Row | { test: 'idle'; size: 0; transport: TransportName }, o: BenchOptions, socketDir: string, n: number): Spec {
  return {
    test: row.test as SpecTest,
    transport: row.transport,
    size: row.size,
    request: o.request,
    response: o.response,
    warmupMs: o.warmup * 1e3,
    durationMs: row.test === 'idle' ? 1000 : o.duration * 1e3,
    ringCapacity: o.ring,
    socketPath: join(socketDir, `s${n}.sock`),
    host: o.peer?.host ?? '',
  };
}

export function describeRow(row: Row, o: Pick<BenchOptions, 'request' | 'response' | 'parallel' | 'connections' | 'connections100k'>): string {
  if (row.part === 'parallel') return `conns: ${o.parallel.toLocaleString('en-US')} at once ${row.transport}`;
  if (row.part === 'scale') return `conns: 1 + ${o.connections.toLocaleString('en-US')} held ${row.transport}`;
  if (row.part === '100k') return `conns100k: ${o.connections100k.toLocaleString('en-US')} ${row.transport}`;
  if (row.test === 'rr' || row.test === 'crr') return `${row.test} ${sizeName(o.request)}/${sizeName(o.response)} ${row.transport}`;
  return `${row.test} ${sizeName(row.size)} ${row.transport}`;
}

function connsText(part: ConnsPart, p: ConnsPoint): string {
  const m = p.metrics;
  if (part === 'parallel') return `${m.parallel.toFixed(0)} conn/s`;
  if (part === 'scale') return `set-up ${m.setup.toFixed(0)} conn/s, +${m.fdsClient}/+${m.fdsServer} fds, ${m.rssClient.toFixed(1)}/${m.rssServer.toFixed(1)} KiB per connection`;
  return `${m.setup100k.toFixed(1)} s, ${m.rssServer100k.toFixed(1)} KiB per connection in the server`;
}

function valueText(test: TestName, v: number): string {
  const u = UNITS[test].unit;
  const digits = v >= 100 ? 0 : v >= 10 ? 1 : v >= 1 ? 2 : 3;
  return `${v.toFixed(digits)} ${u}`;
}

export async function runBench(o: BenchOptions, commandLine: string): Promise<BenchOutput> {
  if (o.transports.includes('ring') || o.idle) {
    const why = hostUnavailableReason();
    if (why) throw new CommandError(`the ring transport needs xway's host platform, which is unavailable here: ${why} (leave 'ring' out of --transport to measure the others)`);
  }
  const rowsOf = (test: TestName) => (test === 'stream' || test === 'maerts' ? o.sizes : [0]);
  const netperf = o.tests.filter((t) => t !== 'conns' && t !== 'conns100k');
  const rows: Row[] = [];
  for (const test of netperf) for (const size of rowsOf(test)) for (const transport of o.transports) rows.push({ test, size, transport });
  // conns compares the ring with TCP (a Unix socket's descriptors are TCP's); conns100k is ring only.
  const connsTransports = o.transports.filter((t) => t !== 'unix');
  const parts: { test: TestName; part: ConnsPart; transports: TransportName[]; seconds: number }[] = [
    ...(o.tests.includes('conns') ? [
      { test: 'conns' as const, part: 'parallel' as const, transports: connsTransports, seconds: 2 },
      { test: 'conns' as const, part: 'scale' as const, transports: connsTransports, seconds: 6 + o.connections / 2000 },
    ] : []),
    ...(o.tests.includes('conns100k') ? [{ test: 'conns100k' as const, part: '100k' as const, transports: ['ring'] as TransportName[], seconds: 10 + o.connections100k / 2000 }] : []),
  ];
  const plan: { row: Row; rep: number; seconds?: number }[] = [];
  for (let rep = 1; rep <= o.reps; rep++) {
    for (const test of netperf) {
      for (const size of rowsOf(test)) {
        const ts = o.transports;
        for (let i = 0; i < ts.length; i++) plan.push({ rep, row: { test, size, transport: ts[(i + rep - 1) % ts.length] } });
      }
    }
    for (const p of parts) {
      const ts = p.transports;
      for (let i = 0; i < ts.length; i++) plan.push({ rep, row: { test: p.test, size: 0, transport: ts[(i + rep - 1) % ts.length], part: p.part }, seconds: p.seconds });
    }
  }
  const idleTransports: TransportName[] = o.idle ? (['ring', 'tcp'] as TransportName[]) : [];
  const perPoint = o.warmup + o.duration + 0.35;
  const progress = new Progress(plan.length + idleTransports.length, o.quiet, perPoint, [
    ...plan.map((p) => p.seconds ?? perPoint), ...idleTransports.map(() => 1.4),
  ]);
  if (o.netns) {
    const why = netnsUnavailableReason();
    if (why) throw new CommandError(`--netns cannot run here: ${why}`);
  }
  const connsPoints = new Map<string, ConnsPoint[]>();
  const socketDir = mkdtempSync(join(os.tmpdir(), 'xway-bench-'));
  let netns: NetnsPair | null = null;
  const onSigint = () => {
    progress.clear();
    rmSync(socketDir, { recursive: true, force: true });
    process.exit(130);
  };
  process.once('SIGINT', onSigint);
  const points = new Map<string, Point[]>(rows.map((r) => [rowKey(r), []]));
  const failures: Failure[] = [];
  const idle: IdleResult[] = [];
  const started = performance.now();
  let pair: Pair | null = null;
  let n = 0;
  try {
    if (o.netns) netns = createNetnsPair(registryDirIn(socketDir));
    pair = new Pair(o.threads, netns, o.peer);
    await pair.ready();
    for (const { row, rep } of plan) {
      const label = `${describeRow(row, o)} rep ${rep}/${o.reps}`;
      progress.begin(label);
      try {
        if (row.part) {
          const spec = { ...specFor({ ...row, test: 'crr' }, o, socketDir, ++n), test: (row.part === 'parallel' ? 'conns-parallel' : 'conns-scale') as SpecTest };
          if (row.part === '100k') spec.ringCapacity = o.ring || 16384;
          const point = row.part === '100k' ? await measure100k(spec, o) : await measureConns(row.part, spec, o);
          const key = `${row.part}/${row.transport}`;
          connsPoints.set(key, [...(connsPoints.get(key) ?? []), point]);
          progress.end(label, connsText(row.part, point));
          continue;
        }
        const point = toPoint(row as Spec & Row, await runSpec(pair, specFor(row, o, socketDir, ++n)), o.threads);
        points.get(rowKey(row))!.push(point);
        progress.end(label, valueText(row.test, point.value));
      } catch (err) {
        failures.push({ ...row, rep, error: (err as Error).message });
        progress.end(label, `FAILED: ${(err as Error).message}`);
        pair.kill(); // whatever state they are in, start the next point afresh
        await Promise.all([pair.server.exited, pair.client.exited]);
        pair = new Pair(o.threads, netns, o.peer);
        await pair.ready();
      }
    }
    for (const transport of idleTransports) {
      const label = `idle connection ${transport} (1 s)`;
      progress.begin(label);
      try {
        const r = await runSpec(pair, specFor({ test: 'idle', size: 0, transport }, o, socketDir, ++n));
        if (transport === 'ring' && (r.client.transport !== 'ring' || r.server.transport !== 'ring')) throw new Error('the idle connection did not use the ring');
        const entry: IdleResult = { transport, clientCpuMs: r.client.cpu.rate * 1000, serverCpuMs: r.server.cpu.rate * 1000,
          clientWindowS: r.client.cpu.windowS, serverWindowS: r.server.cpu.windowS, sameProcess: o.threads };
        idle.push(entry);
        progress.end(label, `client ${entry.clientCpuMs.toFixed(1)} ms, server ${entry.serverCpuMs.toFixed(1)} ms CPU per second`);
      } catch (err) {
        idle.push({ transport, error: (err as Error).message, clientCpuMs: NaN, serverCpuMs: NaN, clientWindowS: 0, serverWindowS: 0, sameProcess: o.threads });
        progress.end(label, `FAILED: ${(err as Error).message}`);
      }
    }
  } finally {
    process.removeListener('SIGINT', onSigint);
    progress.clear();
    await pair?.close();
    netns?.close();
    rmSync(socketDir, { recursive: true, force: true });
  }
  const seconds = (performance.now() - started) / 1e3;

  const results: Result[] = rows.map((row) => {
    const ps = points.get(rowKey(row))!;
    const u = UNITS[row.test];
    const cpu = summarize(ps.map((p) => p.cpu));
    const med = (xs: number[]) => summarize(xs).median;
    return {
      ...row, unit: u.unit, better: u.better,
      value: summarize(ps.map((p) => p.value)), values: ps.map((p) => p.value),
      ...(u.second ? { second: { unit: u.second, median: med(ps.map((p) => p.second!)) } } : {}),
      cpu: { unit: u.cpu, median: cpu.median, min: cpu.min, max: cpu.max },
      cpuShare: { client: med(ps.map((p) => p.cpuClient)), server: med(ps.map((p) => p.cpuServer)) },
      ...(row.test === 'rr' || row.test === 'crr' ? { p99Us: med(ps.map((p) => p.p99Us!)) } : {}),
      carriedBy: [...new Set(ps.flatMap((p) => [p.transport.client, p.transport.server]))],
      ratioToTcp: null,
      failed: failures.filter((f) => rowKey(f) === rowKey(row)).length,
    };
  });
  results.push(...connsResults(connsPoints, failures, [...new Set(parts.flatMap((p) => p.transports))]));
  for (const r of results) {
    const tcp = results.find((x) => x.test === r.test && x.size === r.size && x.metric === r.metric && x.transport === 'tcp');
    if (tcp && r.value.n && tcp.value.n) r.ratioToTcp = r.value.median / tcp.value.median;
  }
  const cpus = os.cpus();
  return {
    xway: version(),
    node: process.version,
    machine: { cpus: cpus.length, model: cpus[0]?.model?.trim() ?? 'unknown', arch: process.arch, kernel: os.release(), memoryGB: Math.round(os.totalmem() / 1e9) },
    command: commandLine,
    options: o,
    seconds,
    results,
    idle: o.idle ? idle : null,
    targets: o.targets ? judgeTargets(results, o.idle ? idle : null, o.connections) : null,
    failures,
  };
}

function version(): string {
  try {
    return (JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

export async function benchCommand(argv: string[]): Promise<void> {
  const o = parseBenchOptions(argv);
  if (!o) {
    process.stdout.write(BENCH_HELP + '\n');
    return;
  }
  if (o.peerListen) return servePeers(o.peerListen.host, o.peerListen.port, (line) => { if (!o.quiet) process.stderr.write(line + '\n'); });
  const commandLine = ['xway', 'bench', ...argv].join(' ');
  const out = await runBench(o, commandLine);
  if (o.svg) {
    writeFileSync(o.svg, renderSvg(out));
    if (!o.quiet) process.stderr.write(`chart written to ${o.svg}\n`);
  }
  if (o.json) process.stdout.write(JSON.stringify(out, null, 2) + '\n');
  else {
    process.stdout.write(formatReport(out));
    if (out.targets) process.stdout.write(formatTargets(out.targets, out.idle));
  }
  // A failed data point is reported in the output and makes the exit status 1.
  if (out.failures.length || out.idle?.some((i) => i.error)) process.exitCode = 1;
}
