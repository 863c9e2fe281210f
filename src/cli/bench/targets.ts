// The socket layer's performance targets, judged on the medians of one `xway bench` run:
//   64 KiB stream ≥ 4× TCP loopback, 1 KiB stream ≥ 8×, 1-byte request/response round trip
//   ≤ 1/6 of TCP's, connection setup (crr) no slower than 2× TCP's, and an idle ring connection
//   that costs no CPU (here: under 1% of a CPU, 10 ms in the idle second, in each process).

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

export function judgeTargets(results: Result[], idle: IdleResult[] | null): Target[] {
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
    out.push({ target: 'connection setup (crr) ≤ 2× TCP\'s time', need: '≤ 2×', ratio,
      met: ring && tcp ? ratio <= 2 : null,
      detail: ring && tcp ? `ring ${f(1e6 / ring.value.median, 1)} µs vs TCP ${f(1e6 / tcp.value.median, 1)} µs per connect+request+response+close = ${ratioText(ratio)} (${f(ring.value.median, 0)} vs ${f(tcp.value.median, 0)} conn/s)` : 'not measured' });
  }
  {
    const ring = idle?.find((i) => i.transport === 'ring' && !i.error);
    const worst = ring ? Math.max(ring.clientCpuMs, ring.serverCpuMs) : NaN;
    out.push({ target: 'an idle ring connection uses no CPU', need: `< ${IDLE_CPU_MS} ms CPU per idle second in each process`, ratio: worst,
      met: ring ? worst < IDLE_CPU_MS : null,
      detail: ring ? `client ${f(ring.clientCpuMs, 1)} ms, server ${f(ring.serverCpuMs, 1)} ms of CPU over ${f(Math.min(ring.clientWindowS, ring.serverWindowS), 2)} s idle${ring.sameProcess ? ' (threads: whole process)' : ''}` : 'not measured' });
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
