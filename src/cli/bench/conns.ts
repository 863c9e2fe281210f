// `xway bench --test conns`: connections at scale, ring against TCP, between two processes.
//
//   parallel   1,000 clients at once (--parallel), each: connect, 1 B request, 1 B response, close
//              (the server closes first); connections/s from the first connect to the last close
//              of a burst, the median of 3 bursts after 8 warm-up bursts (so a ring's link is up,
//              as it is for any client that has connected in the last LINK_IDLE_MS, and the code
//              is hot), 300 ms apart; and the CPU time of both processes per 1,000
//   scale      one connection, then 10,000 more (--connections) held open at once (256 set-ups in
//              flight), at --ring's size (xway's default otherwise): the descriptors they add in
//              each process; each echoes 4 KiB, every byte compared; then, idle (2.5 s, past the
//              time idle rings give their pages back), the resident memory per connection in each
//              process (VmRSS growth since before the first connection ÷ connections) and the part
//              of it that is the link's shared memory (smaps Rss of the xway-link mappings), and
//              the CPU both processes spend over one idle second with all of them open, and over
//              one second after they are all closed (a ring's link is still up then, for
//              LINK_IDLE_MS)
//   conns100k  (opt-in) 100,000 ring connections (--connections) with 16 KiB rings (or --ring)
//              into one server process listening on ⌈n/12,500⌉ ports, from 4 client processes:
//              set-up time, resident memory per connection in the server and in the clients
//
// Every figure comes from the kernel (/proc/self of each peer: conns-peer.ts) or from the
// coordinator's clock around the peers' answers.

import type { BenchOptions, Failure, Result } from './command.js';
import { Peer } from './peers.js';
import type { FromPeer, Opened, PeerAddress, Probe, Spec, ToPeer, TransportName } from './spec.js';
import { summarize } from './stats.js';

export type ConnsPart = 'parallel' | 'scale' | '100k';

/** What one repetition of a part measured: a figure per metric, and what carried it. */
export interface ConnsPoint {
  metrics: Record<string, number>;
  /** CPU seconds per 1,000 connections (parallel), for the CPU column. */
  cpu?: number;
  carriedBy: string[];
}

export interface ConnsMetric {
  part: ConnsPart;
  key: string;
  label: (o: BenchOptions) => string;
  unit: string;
  better: 'higher' | 'lower';
  /** A figure only a ring has (its link's shared memory). */
  ringOnly?: boolean;
}

const n = (v: number) => v.toLocaleString('en-US');
export const SCALE_ECHO = 4096;
const WINDOW = 256;
const IDLE_WAIT_MS = 2500;
const PORT_SHARE = 12_500;
const CLIENTS_100K = 4;
/** parallel: bursts before the measured ones, the measured ones (their median is the figure),
 *  and the pause after each. */
const PARALLEL_WARMUP = 8;
const PARALLEL_MEASURED = 3;
const PARALLEL_PAUSE_MS = 300;

export const CONNS_METRICS: ConnsMetric[] = [
  { part: 'parallel', key: 'parallel', label: (o) => `${n(o.parallel)} clients at once: connect+1 B+1 B+close`, unit: 'conn/s', better: 'higher' },
  { part: 'scale', key: 'setup', label: (o) => `set-up of ${n(o.connections)} more, held open`, unit: 'conn/s', better: 'higher' },
  { part: 'scale', key: 'fdsClient', label: (o) => `descriptors added by ${n(o.connections)} after the first, client`, unit: 'fds', better: 'lower' },
  { part: 'scale', key: 'fdsServer', label: (o) => `descriptors added by ${n(o.connections)} after the first, server`, unit: 'fds', better: 'lower' },
  { part: 'scale', key: 'echo', label: (o) => `echo of ${SCALE_ECHO / 1024} KiB on each of ${n(o.connections + 1)} at once, checked`, unit: 'ms', better: 'lower' },
  { part: 'scale', key: 'rssClient', label: () => 'resident memory per idle connection, client', unit: 'KiB', better: 'lower' },
  { part: 'scale', key: 'rssServer', label: () => 'resident memory per idle connection, server', unit: 'KiB', better: 'lower' },
  { part: 'scale', key: 'linkClient', label: () => '  of which the link\'s shared memory, client', unit: 'KiB', better: 'lower', ringOnly: true },
  { part: 'scale', key: 'linkServer', label: () => '  of which the link\'s shared memory, server', unit: 'KiB', better: 'lower', ringOnly: true },
  { part: 'scale', key: 'idleCpuClient', label: (o) => `CPU in an idle second, ${n(o.connections + 1)} open, client`, unit: 'ms', better: 'lower' },
  { part: 'scale', key: 'idleCpuServer', label: (o) => `CPU in an idle second, ${n(o.connections + 1)} open, server`, unit: 'ms', better: 'lower' },
  { part: 'scale', key: 'emptyCpuClient', label: () => 'CPU in the second after all closed, client', unit: 'ms', better: 'lower' },
  { part: 'scale', key: 'emptyCpuServer', label: () => 'CPU in the second after all closed, server', unit: 'ms', better: 'lower' },
  { part: '100k', key: 'setup100k', label: (o) => `set-up of ${n(o.connections100k)} (${CLIENTS_100K} client processes, ${Math.ceil(o.connections100k / PORT_SHARE)} ports)`, unit: 's', better: 'lower' },
  { part: '100k', key: 'rate100k', label: () => '  as a rate', unit: 'conn/s', better: 'higher' },
  { part: '100k', key: 'rssServer100k', label: () => 'resident memory per connection, server', unit: 'KiB', better: 'lower' },
  { part: '100k', key: 'rssClients100k', label: () => 'resident memory per connection, clients', unit: 'KiB', better: 'lower' },
  { part: '100k', key: 'linkServer100k', label: () => '  of which the link\'s shared memory (server)', unit: 'KiB', better: 'lower', ringOnly: true },
  { part: '100k', key: 'fdsServer100k', label: () => 'descriptors added in the server', unit: 'fds', better: 'lower' },
];

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
let messageId = 1 << 20; // apart from command.ts's ids

/** A request to a peer, without its id (given here). */
type Request = ToPeer extends infer T ? (T extends { id: number } ? Omit<T, 'id'> : never) : never;

async function ask<K extends 'listening' | 'opened' | 'traffic' | 'probe' | 'done' | 'result'>(peer: Peer, message: Request, key: K, timeoutMs: number): Promise<Extract<FromPeer, Record<K, unknown>>[K]> {
  const reply = await peer.request({ ...message, id: ++messageId } as ToPeer & { id: number }, timeoutMs);
  if (!(key in reply)) throw new Error(`${peer.name} peer answered without '${key}'`);
  return (reply as unknown as Record<K, never>)[key];
}

const probeOf = (peer: Peer, collect = true) => ask(peer, { type: 'probe', collect }, 'probe', 10_000);

function checkOpened(what: string, opened: Opened, wanted: number, transport: TransportName): void {
  if (opened.failed > 0) throw new Error(`${what}: ${n(opened.failed)} of ${n(wanted)} connections failed (${opened.ok} made): ${opened.firstError}`);
  if (transport === 'ring' && (opened.transports.ring ?? 0) !== opened.ok) throw new Error(`${what}: ring asked for, but carried by ${JSON.stringify(opened.transports)}`);
}

/** Waits until `server` holds `count` connections: a TCP client's 'connect' comes before the
 *  server's accept(), so its count lags. */
async function accepted(server: Peer, count: number, ms = 20_000): Promise<void> {
  const deadline = performance.now() + ms;
  for (;;) {
    const { connections } = await probeOf(server);
    if (connections >= count) return;
    if (performance.now() > deadline) throw new Error(`the server holds ${connections} of ${count} connections after ${ms / 1e3} s`);
    await sleep(50);
  }
}

/** One repetition of `part` over `transport`, between two fresh processes: the memory a
 *  connection costs is not blurred by what earlier points left, and the thousands of connections
 *  measured here leave nothing behind (garbage, heap to give back) in the processes that measure
 *  the next points — an idle connection's CPU time, say. */
export async function measureConns(part: Exclude<ConnsPart, '100k'>, spec: Spec, o: BenchOptions): Promise<ConnsPoint> {
  const fresh = { server: new Peer('server', false), client: new Peer('client', false) };
  try {
    await Promise.all([fresh.server.ready, fresh.client.ready]);
    return await servedPoint(part, fresh, spec, o);
  } finally {
    await Promise.all([fresh.server.close(), fresh.client.close()]);
  }
}

async function servedPoint(part: Exclude<ConnsPart, '100k'>, pair: { server: Peer; client: Peer }, spec: Spec, o: BenchOptions): Promise<ConnsPoint> {
  const listening = await ask(pair.server, { type: 'serve', spec }, 'listening', 10_000);
  let point: ConnsPoint;
  try {
    point = part === 'parallel' ? await parallelPoint(pair, spec, listening, o) : await scalePoint(pair, spec, listening, o);
  } catch (err) {
    await ask(pair.client, { type: 'closeAll' }, 'done', 120_000).catch(() => {});
    await ask(pair.server, { type: 'stop' }, 'result', 30_000).catch(() => {});
    throw err;
  }
  await ask(pair.server, { type: 'stop' }, 'result', 30_000); // its error (a connection not on the ring, say) fails the point
  return point;
}

async function parallelPoint(pair: { server: Peer; client: Peer }, spec: Spec, address: PeerAddress, o: BenchOptions): Promise<ConnsPoint> {
  const count = o.parallel;
  const budget = 60_000 + count * 10;
  const burst = async (what: string) => {
    const r = await ask(pair.client, { type: 'parallel', spec, address, n: count }, 'opened', budget);
    checkOpened(what, r, count, spec.transport);
    if (r.ok !== count) throw new Error(`${what}: ${n(count - r.ok)} of ${n(count)} transactions did not complete`);
    // A pause in which the server finishes its closes (a ring slot is free again only once the
    // server's side has closed too), so that bursts do not pile up on each other.
    await sleep(PARALLEL_PAUSE_MS);
    return r;
  };
  // Warm-up bursts: a ring's link is set up (as it is for any client that connected in the last
  // LINK_IDLE_MS) and both processes' code is hot — a ring connection runs far more JavaScript
  // than a TCP one, which V8 takes thousands of connections to compile fully (the ring's bursts
  // still rose from 13k to 22k conn/s between the 4th and the 6th, TCP's from 11k to 16k).
  for (let i = 0; i < PARALLEL_WARMUP; i++) await burst(`warm-up burst ${i + 1}`);
  // CPU only, no forced collection: two full GCs just before the measured bursts held the ring's
  // next three bursts near half its rate (12.7k, 10.2k, 9.7k conn/s, then 20.5k and up), a
  // moment no server meets on every measurement. Memory probes (scale) still collect.
  const [c0, s0] = [await probeOf(pair.client, false), await probeOf(pair.server, false)];
  const rates: number[] = [];
  const transports = new Set<string>();
  for (let i = 0; i < PARALLEL_MEASURED; i++) {
    const r = await burst(`burst ${i + 1}`);
    rates.push(count / (r.ms / 1e3));
    for (const t of Object.keys(r.transports)) transports.add(t);
  }
  const [c1, s1] = [await probeOf(pair.client, false), await probeOf(pair.server, false)];
  const cpuS = (c1.cpuUs - c0.cpuAfterUs + s1.cpuUs - s0.cpuAfterUs) / 1e6;
  return { metrics: { parallel: summarize(rates).median }, cpu: (cpuS / (count * PARALLEL_MEASURED)) * 1000, carriedBy: [...transports] };
}

async function scalePoint(pair: { server: Peer; client: Peer }, spec: Spec, address: PeerAddress, o: BenchOptions): Promise<ConnsPoint> {
  const count = o.connections;
  const both = async () => ({ client: await probeOf(pair.client), server: await probeOf(pair.server), at: performance.now() });
  const before = await both();
  const first = await ask(pair.client, { type: 'open', spec, address, n: 1, window: 1 }, 'opened', 30_000);
  checkOpened('the first connection', first, 1, spec.transport);
  const afterFirst = await both();
  const more = await ask(pair.client, { type: 'open', spec, address, n: count, window: WINDOW }, 'opened', 60_000 + count * 20);
  checkOpened(`${n(count)} more`, more, count, spec.transport);
  await accepted(pair.server, count + 1);
  const opened = await both();
  const traffic = await ask(pair.client, { type: 'traffic', bytes: SCALE_ECHO }, 'traffic', 60_000 + count * 10);
  if (traffic.failed || traffic.bad) throw new Error(`echo: ${traffic.bad} connections echoed wrong bytes, ${traffic.failed} failed (${traffic.firstError})`);
  await sleep(IDLE_WAIT_MS);
  const idle = await both();
  await sleep(1000);
  const idle2 = await both();
  await ask(pair.client, { type: 'closeAll' }, 'done', 60_000 + count * 10);
  await sleep(200);
  const empty = await both();
  await sleep(1000);
  const empty2 = await both();
  const total = count + 1;
  const cpuMsPerS = (a: Probe, b: Probe, t0: number, t1: number) => ((b.cpuUs - a.cpuAfterUs) / 1e3) / ((t1 - t0) / 1e3);
  return {
    metrics: {
      setup: count / (more.ms / 1e3),
      fdsClient: opened.client.fds - afterFirst.client.fds,
      fdsServer: opened.server.fds - afterFirst.server.fds,
      echo: traffic.ms,
      rssClient: (idle.client.rssKiB - before.client.rssKiB) / total,
      rssServer: (idle.server.rssKiB - before.server.rssKiB) / total,
      linkClient: idle.client.linkKiB / total,
      linkServer: idle.server.linkKiB / total,
      idleCpuClient: cpuMsPerS(idle.client, idle2.client, idle.at, idle2.at),
      idleCpuServer: cpuMsPerS(idle.server, idle2.server, idle.at, idle2.at),
      emptyCpuClient: cpuMsPerS(empty.client, empty2.client, empty.at, empty2.at),
      emptyCpuServer: cpuMsPerS(empty.server, empty2.server, empty.at, empty2.at),
    },
    carriedBy: Object.keys(more.transports),
  };
}

/** conns100k: one fresh server process and CLIENTS_100K fresh client processes. */
export async function measure100k(spec: Spec, o: BenchOptions): Promise<ConnsPoint> {
  const count = o.connections100k;
  const ports = Math.ceil(count / PORT_SHARE);
  const server = new Peer('server', false);
  const extra = Array.from({ length: CLIENTS_100K }, (_, i) => new Peer(`client ${i + 1}`, false));
  const clients = extra;
  const pair = { server, client: clients[0] };
  try {
    await Promise.all([server.ready, ...extra.map((p) => p.ready)]);
    const listening = await ask(pair.server, { type: 'serve', spec: { ...spec, ports } }, 'listening', 30_000);
    const all = 'ports' in listening ? listening.ports : 'port' in listening ? [listening.port] : [];
    const share = clients.map((_, c) => Math.floor(count / clients.length) + (c < count % clients.length ? 1 : 0));
    const portsOf = (c: number) => ({ ports: all.filter((_, i) => i % clients.length === c).concat(all.length < clients.length ? [all[c % all.length]] : []) });
    const before = { server: await probeOf(pair.server), clients: await Promise.all(clients.map((c) => probeOf(c))) };
    const t0 = performance.now();
    const opened = await Promise.all(clients.map((peer, c) => ask(peer, { type: 'open', spec, address: portsOf(c), n: share[c], window: WINDOW }, 'opened', 600_000)));
    const setupS = (performance.now() - t0) / 1e3;
    opened.forEach((r, c) => checkOpened(`client ${c + 1}'s ${n(share[c])}`, r, share[c], spec.transport));
    const traffic = await Promise.all(clients.map((peer) => ask(peer, { type: 'traffic', bytes: 64 }, 'traffic', 300_000)));
    for (const t of traffic) if (t.failed || t.bad) throw new Error(`echo: ${t.bad} wrong, ${t.failed} failed (${t.firstError})`);
    await sleep(IDLE_WAIT_MS);
    const idle = { server: await probeOf(pair.server), clients: await Promise.all(clients.map((c) => probeOf(c))) };
    const clientGrowth = idle.clients.reduce((sum, p, c) => sum + p.rssKiB - before.clients[c].rssKiB, 0);
    await Promise.all(clients.map((peer) => ask(peer, { type: 'closeAll' }, 'done', 300_000)));
    await ask(pair.server, { type: 'stop' }, 'result', 60_000);
    return {
      metrics: {
        setup100k: setupS,
        rate100k: count / setupS,
        rssServer100k: (idle.server.rssKiB - before.server.rssKiB) / count,
        rssClients100k: clientGrowth / count,
        linkServer100k: idle.server.linkKiB / count,
        fdsServer100k: idle.server.fds - before.server.fds,
      },
      carriedBy: [...new Set(opened.flatMap((r) => Object.keys(r.transports)))],
    };
  } finally {
    await Promise.all([server.close(), ...extra.map((p) => p.close())]);
  }
}

/** The Results of the conns parts: one per metric and transport, over the repetitions. */
export function connsResults(points: Map<string, ConnsPoint[]>, failures: Failure[], transports: TransportName[]): Result[] {
  const results: Result[] = [];
  for (const m of CONNS_METRICS) {
    for (const transport of transports) {
      if (m.ringOnly && transport !== 'ring') continue;
      const failed = failures.filter((f) => f.part === m.part && f.transport === transport).length;
      const ps = points.get(`${m.part}/${transport}`) ?? [];
      if (!ps.length && !failed) continue;
      const values = ps.map((p) => p.metrics[m.key]).filter((v) => v !== undefined);
      const cpu = summarize(ps.map((p) => p.cpu).filter((v): v is number => v !== undefined));
      results.push({
        test: m.part === '100k' ? 'conns100k' : 'conns', size: 0, transport, metric: m.key, part: m.part,
        unit: m.unit, better: m.better, value: summarize(values), values,
        cpu: { unit: 'CPU s/1k conn', median: cpu.median, min: cpu.min, max: cpu.max },
        cpuShare: { client: NaN, server: NaN },
        carriedBy: [...new Set(ps.flatMap((p) => p.carriedBy))],
        ratioToTcp: null,
        failed,
      });
    }
  }
  return results;
}
