// The table `xway bench` prints: one block per test, a row per write size, per transport the
// median (min–max) over repetitions, the ratio of medians to TCP loopback, and CPU cost.

import { sizeName } from '../args.js';
import type { BenchOutput, Result } from './command.js';
import { UNITS } from './command.js';
import type { TestName } from './spec.js';
import { CONNS_METRICS, SCALE_ECHO } from './conns.js';

export function fmt(v: number): string {
  if (!Number.isFinite(v)) return '—';
  const a = Math.abs(v);
  const digits = a >= 1000 ? 0 : a >= 100 ? 0 : a >= 10 ? 1 : a >= 1 ? 2 : a >= 0.01 ? 3 : 4;
  return v.toFixed(digits);
}

export const ratioText = (r: number | null) => (r !== null && Number.isFinite(r) ? `${r.toFixed(r < 0.1 ? 3 : r < 10 ? 2 : 1)}×` : '—');

function table(rows: string[][]): string {
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => [...(r[c] ?? '')].length)));
  return rows.map((r) => r.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]) : cell.padStart(widths[c]))).join('   ').trimEnd()).join('\n');
}

const TITLES: Record<TestName, string> = {
  stream: 'stream (client → server)',
  maerts: 'maerts (server → client)',
  rr: 'rr (request/response, one at a time)',
  crr: 'crr (connect, request, response, close)',
  conns: 'conns (connections at scale)',
  conns100k: 'conns100k (many connections into one server process)',
};

const VALUE_NOTE: Partial<Record<TestName, string>> = {
  stream: 'GB/s (1e9 bytes/s), higher is better; ÷tcp above 1 is faster than TCP',
  maerts: 'GB/s (1e9 bytes/s), higher is better; ÷tcp above 1 is faster than TCP',
  rr: 'mean round trip in µs, lower is better; ÷tcp below 1 is faster than TCP',
  crr: 'connections/s, higher is better; ÷tcp above 1 is faster than TCP',
};

export function transportNote(out: BenchOutput): string {
  const ring = out.options.ring ? sizeName(out.options.ring) : '256 KiB (default)';
  const host = out.options.peer?.host;
  const what: Record<string, string> = {
    ring: `ring = xway ring (xway.createServer/connect${host ? ` to ${host}` : ''}, transport 'force', ${ring} each direction)`,
    tcp: host ? `tcp = net to ${host}`
      : out.options.netns ? 'tcp = net over a veth pair between two network namespaces (192.0.2.102 → 192.0.2.101; --netns)' : 'tcp = net over 127.0.0.1',
    unix: 'unix = net over a Unix socket',
  };
  return out.options.transports.map((t) => what[t]).join('; ');
}

/** The conns block: a row per figure, per transport its median (min–max), and ring ÷ TCP. */
function connsBlock(out: BenchOutput, test: 'conns' | 'conns100k'): string[] {
  const o = out.options;
  const rs = out.results.filter((r) => r.test === test);
  const transports = o.transports.filter((t) => rs.some((r) => r.transport === t));
  const ring = o.ring ? sizeName(o.ring) : test === 'conns100k' ? '16 KiB' : '256 KiB (default)';
  const lines = [test === 'conns'
    ? `${TITLES[test]}, two processes, ring ${ring} each direction: medians (min–max) over repetitions; ÷tcp: ratio of medians; fds: descriptors; KiB: per connection; CPU: ms in one second`
    : `${TITLES[test]}, ring ${ring} each direction, ${o.connections100k.toLocaleString('en-US')} connections: medians (min–max)`];
  const hasTcp = transports.includes('tcp');
  const others = transports.filter((t) => t !== 'tcp');
  const head = ['figure', ...transports.map((t) => t), ...(hasTcp ? others.map((t) => `${t} ÷tcp`) : [])];
  const body: string[][] = [];
  for (const m of CONNS_METRICS) {
    const cells = transports.map((t) => rs.find((r) => r.metric === m.key && r.transport === t));
    if (cells.every((c) => !c)) continue;
    const value = (r?: (typeof rs)[number]) => {
      if (!r || r.value.n === 0) return r?.failed ? `FAILED [${r.failed}]` : '—';
      const v = (x: number) => (Number.isInteger(x) ? String(x) : fmt(x));
      const spread = r.value.n > 1 && r.value.min !== r.value.max ? ` (${v(r.value.min)}–${v(r.value.max)})` : '';
      return `${v(r.value.median)}${spread} ${m.unit}${r.failed ? ` [${r.failed} failed]` : ''}`;
    };
    body.push([m.label(o), ...cells.map(value), ...(hasTcp ? others.map((t) => ratioText(rs.find((r) => r.metric === m.key && r.transport === t)?.ratioToTcp ?? null)) : [])]);
  }
  lines.push(table([head, ...body]));
  const parallel = rs.filter((r) => r.metric === 'parallel' && r.value.n);
  if (parallel.length) lines.push(`  (CPU of both processes per 1,000 parallel connections: ${parallel.map((r) => `${r.transport} ${fmt(r.cpu.median)} s`).join('; ')})`);
  if (test === 'conns') lines.push(`  (echo: ${SCALE_ECHO} bytes each way on every connection at once; memory after ${2.5} s idle, against the process before its first connection)`);
  return lines;
}

export function formatReport(out: BenchOutput): string {
  const o = out.options;
  const lines: string[] = [];
  const ends = o.threads ? 'two worker threads of one process'
    : o.peer ? `a client process here, its server a peer at ${o.peer.host}:${o.peer.port} (--peer)` : 'two processes';
  lines.push('');
  lines.push(`xway bench: ${ends}, ${o.reps} rep(s) × ${o.duration} s (+${o.warmup} s warm-up) per point, ${out.seconds.toFixed(0)} s in all`);
  lines.push(`machine: ${out.machine.cpus} CPU(s), ${out.machine.model}, Linux ${out.machine.kernel}; Node ${out.node}; xway ${out.xway}`);
  lines.push(`command: ${out.command}`);
  lines.push(transportNote(out));
  lines.push(`cells: median (min–max) over repetitions; ÷tcp: ratio of medians to TCP${o.peer ? '' : ' loopback'}; right of │: CPU time of both`);
  lines.push('ends (user+system) per GB moved or per 1,000 transactions, medians');
  const transports = o.transports;
  for (const test of o.tests) {
    const rs = out.results.filter((r) => r.test === test);
    if (!rs.length) continue;
    if (test === 'conns' || test === 'conns100k') {
      lines.push('', ...connsBlock(out, test));
      continue;
    }
    const u = UNITS[test];
    const rrSizes = `${sizeName(o.request)} request, ${sizeName(o.response)} response`;
    lines.push('');
    lines.push(`${TITLES[test]}${test === 'rr' || test === 'crr' ? `, ${rrSizes}` : ''}: ${VALUE_NOTE[test]}`);
    const others = transports.filter((t) => t !== 'tcp');
    const hasTcp = transports.includes('tcp');
    const label = (size: number) => (test === 'rr' || test === 'crr' ? `${sizeName(o.request)}/${sizeName(o.response)}` : sizeName(size));
    const head = [test === 'rr' || test === 'crr' ? 'sizes' : 'write size', ...transports.map((t) => `${t} ${u.unit}`),
      ...(hasTcp ? others.map((t) => `${t} ÷tcp`) : []), '', ...transports.map((t) => `${t} ${u.cpu}`)];
    const body: string[][] = [];
    const sizes = [...new Set(rs.map((r) => r.size))];
    for (const size of sizes) {
      const cell = (t: string): Result | undefined => rs.find((r) => r.size === size && r.transport === t);
      const value = (r?: Result) => {
        if (!r || r.value.n === 0) return 'FAILED';
        const spread = r.value.n > 1 ? ` (${fmt(r.value.min)}–${fmt(r.value.max)})` : '';
        return `${fmt(r.value.median)}${spread}${r.failed ? ` [${r.failed} failed]` : ''}`;
      };
      body.push([
        label(size),
        ...transports.map((t) => value(cell(t))),
        ...(hasTcp ? others.map((t) => ratioText(cell(t)?.ratioToTcp ?? null)) : []),
        '│',
        ...transports.map((t) => fmt(cell(t)?.cpu.median ?? NaN)),
      ]);
    }
    lines.push(table([head, ...body]));
    if (test === 'rr' || test === 'crr') {
      const extra = transports.map((t) => {
        const r = rs.find((x) => x.transport === t);
        if (!r || !r.value.n) return `${t} —`;
        return test === 'rr'
          ? `${t} ${fmt(r.second!.median)} tx/s, p99 ${fmt(r.p99Us!)} µs`
          : `${t} ${fmt(r.second!.median)} µs per connection, p99 ${fmt(r.p99Us!)} µs`;
      });
      lines.push(`  (${extra.join('; ')})`);
    }
  }
  if (out.idle) {
    lines.push('');
    lines.push('idle connection: CPU time of each end over one idle second (after one byte each way)');
    for (const i of out.idle) {
      lines.push(i.error ? `  ${i.transport}: FAILED: ${i.error}`
        : `  ${i.transport.padEnd(5)} client ${i.clientCpuMs.toFixed(1)} ms, server ${i.serverCpuMs.toFixed(1)} ms${i.sameProcess ? ' (threads: each is the whole process)' : ''}`);
    }
  }
  if (out.failures.length) {
    lines.push('');
    lines.push('failed data points (not counted):');
    for (const f of out.failures) lines.push(`  ${f.part ? `${f.test} ${f.part} ` : `${f.test} ${f.test === 'rr' || f.test === 'crr' ? '' : sizeName(f.size) + ' '}`}${f.transport} rep ${f.rep}: ${f.error}`);
  }
  return lines.join('\n') + '\n';
}
