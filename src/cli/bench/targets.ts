// The socket layer's performance targets, judged on the medians of one `xway bench` run:
//   64 KiB stream ≥ 4× TCP loopback, 1 KiB stream ≥ 8×, 1-byte request/response round trip
//   ≤ 1/6 of TCP's, connect+request+response+close (crr) in at most half TCP's time, and an idle
//   ring connection that costs no CPU (here: under 1% of a CPU, 10 ms in the idle second, in each
//   process); with conns (links): 10,000 connections after the first add no descriptor in either
//   process, 1,000 clients connecting at once get at least 2× TCP's connections/s, and an idle
//   link — 10,000 idle connections on it, or none — costs no CPU either.

import type { Result } from './command.js';
import type { TransportName } from './spec.js';

export interface IdleResult {
  transport: TransportName;
  /** CPU milliseconds each end used over its idle second (between threads: the whole process, twice). */
  clientCpuMs: number;
  serverCpuMs: number;
  clientWindowS: number;
  serverWindowS: number;
  sameProcess: boolean;
  error?: string;
}

export interface Target {
  target: string;
  met: boolean | null;
  /** ring ÷ tcp (streams, rr), or ring's time per connection ÷ TCP's (crr); idle: max CPU ms. */
  ratio: number;
  need: string;
  detail: string;
}

/** Idle CPU a connection may use and still count as using none: 10 ms in the idle second. */
export const IDLE_CPU_MS = 10;

const ratioText = (r: number) => (Number.isFinite(r) ? `${r.toFixed(r < 0.1 ? 3 : 2)}×` : '—');
const f = (v: number, digits = 2) => (Number.isFinite(v) ? v.toFixed(digits) : '—');

export function judgeTargets(results: Result[], idle: IdleResult[] | null, connections = 10_000): Target[] {
  const find = (test: string, size: number, transport: string) => results.find((r) => r.test === test && r.size === size && r.transport === transport && r.value.n > 0);
  const out: Target[] = [];
  const stream = (size: number, label: string, need: number) => {
    const ring = find('stream', size, 'ring'), tcp = find('stream', size, 'tcp');
    const ratio = ring && tcp ? ring.value.median / tcp.value.median : NaN;
    out.push({ target: `${label} stream ≥ ${need}× TCP loopback`, need: `≥ ${need}×`, ratio,
      met: ring && tcp ? ratio >= need : null,
      detail: ring && tcp ? `ring ${f(ring.value.median)} GB/s vs TCP ${f(tcp.value.median)} GB/s = ${ratioText(ratio)}` : 'not measured' });
  };
  stream(65536, '64 KiB', 4);
  stream(1024, '1 KiB', 8);
  {
    const ring = find('rr', 0, 'ring'), tcp = find('rr', 0, 'tcp');
    const ratio = ring && tcp ? ring.value.median / tcp.value.median : NaN;
    out.push({ target: 'request/response round trip ≤ 1/6 of TCP\'s', need: '≤ 0.167×', ratio,
      met: ring && tcp ? ratio <= 1 / 6 : null,
      detail: ring && tcp ? `ring ${f(ring.value.median, 1)} µs vs TCP ${f(tcp.value.median, 1)} µs = ${ratioText(ratio)}` : 'not measured' });
  }
  {
    const ring = find('crr', 0, 'ring'), tcp = find('crr', 0, 'tcp');
    // Time per connection: the inverse of the rates.
    const ratio = ring && tcp ? tcp.value.median / ring.value.median : NaN;
    out.push({ target: 'connect+request+response+close (crr) ≤ 0.5× TCP\'s time', need: '≤ 0.5×', ratio,
      met: ring && tcp ? ratio <= 0.5 : null,
      detail: ring && tcp ? `ring ${f(1e6 / ring.value.median, 1)} µs vs TCP ${f(1e6 / tcp.value.median, 1)} µs per connect+request+response+close = ${ratioText(ratio)} (${f(ring.value.median, 0)} vs ${f(tcp.value.median, 0)} conn/s)` : 'not measured' });
  }
  {
    const ring = idle?.find((i) => i.transport === 'ring' && !i.error);
    const worst = ring ? Math.max(ring.clientCpuMs, ring.serverCpuMs) : NaN;
    out.push({ target: 'an idle ring connection uses no CPU', need: `< ${IDLE_CPU_MS} ms CPU per idle second in each process`, ratio: worst,
      met: ring ? worst < IDLE_CPU_MS : null,
      detail: ring ? `client ${f(ring.clientCpuMs, 1)} ms, server ${f(ring.serverCpuMs, 1)} ms of CPU over ${f(Math.min(ring.clientWindowS, ring.serverWindowS), 2)} s idle${ring.sameProcess ? ' (threads: whole process)' : ''}` : 'not measured' });
  }
  out.push(...connsTargets(results, connections));
  return out;
}

/** The targets of links, from `xway bench --test conns` (conns.ts). */
function connsTargets(results: Result[], connections: number): Target[] {
  const get = (metric: string, transport: string) => results.find((r) => r.metric === metric && r.transport === transport && r.value.n > 0);
  const out: Target[] = [];
  const count = connections.toLocaleString('en-US');
  {
    const c = get('fdsClient', 'ring'), s = get('fdsServer', 'ring');
    const tc = get('fdsClient', 'tcp'), ts = get('fdsServer', 'tcp');
    const worst = c && s ? Math.max(c.value.max, s.value.max) : NaN;
    out.push({ target: `after the first connection, ${count} more add no descriptor in either process`, need: '+0 in each', ratio: worst,
      met: c && s ? worst <= 0 : null,
      detail: c && s ? `ring +${f(c.value.median, 0)} client, +${f(s.value.median, 0)} server (at most +${f(worst, 0)})${tc && ts ? `; TCP +${f(tc.value.median, 0)}, +${f(ts.value.median, 0)}` : ''}`
        : `not measured${results.some((r) => r.metric === 'fdsClient' && r.transport === 'ring' && r.failed) ? ' (the ring connections failed: see above)' : ' (--test conns)'}` });
  }
  {
    const ring = get('parallel', 'ring'), tcp = get('parallel', 'tcp');
    const ratio = ring && tcp ? ring.value.median / tcp.value.median : NaN;
    out.push({ target: 'clients connecting at once: connections/s ≥ 2× TCP\'s', need: '≥ 2×', ratio,
      met: ring && tcp ? ratio >= 2 : null,
      detail: ring && tcp ? `ring ${f(ring.value.median, 0)} vs TCP ${f(tcp.value.median, 0)} conn/s = ${ratioText(ratio)}` : 'not measured (--test conns)' });
  }
  {
    const keys = ['idleCpuClient', 'idleCpuServer', 'emptyCpuClient', 'emptyCpuServer'];
    const ring = keys.map((k) => get(k, 'ring'));
    const worst = ring.every(Boolean) ? Math.max(...ring.map((r) => r!.value.median)) : NaN;
    out.push({ target: 'an idle link uses no CPU', need: `< ${IDLE_CPU_MS} ms CPU per idle second in each process`, ratio: worst,
      met: ring.every(Boolean) ? worst < IDLE_CPU_MS : null,
      detail: ring.every(Boolean)
        ? `with its connections open and idle: client ${f(ring[0]!.value.median, 1)} ms, server ${f(ring[1]!.value.median, 1)} ms; with none left: client ${f(ring[2]!.value.median, 1)} ms, server ${f(ring[3]!.value.median, 1)} ms`
        : `not measured${results.some((r) => keys.includes(r.metric ?? '') && r.transport === 'ring' && r.failed) ? ' (the ring connections failed: see above)' : ' (--test conns)'}` });
  }
  return out;
}

export function formatTargets(targets: Target[], idle: IdleResult[] | null): string {
  const lines = ['', 'targets (medians of this run)'];
  const width = Math.max(...targets.map((t) => t.target.length));
  for (const t of targets) {
    const verdict = t.met === null ? 'n/a' : t.met ? 'MET' : 'NOT MET';
    lines.push(`  ${t.target.padEnd(width)}  ${verdict.padEnd(7)}  ${t.detail} (need ${t.need})`);
  }
  const tcp = idle?.find((i) => i.transport === 'tcp' && !i.error);
  if (tcp) lines.push(`  (for reference, an idle TCP connection: client ${f(tcp.clientCpuMs, 1)} ms, server ${f(tcp.serverCpuMs, 1)} ms of CPU in its idle second)`);
  for (const i of idle ?? []) if (i.error) lines.push(`  idle ${i.transport}: FAILED: ${i.error}`);
  return lines.join('\n') + '\n';
}
