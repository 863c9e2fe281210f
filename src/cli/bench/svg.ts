// `xway bench --svg FILE`: a hand-written SVG chart (no dependencies). Left: throughput against
// write size (log-log; one line per transport, stream solid and maerts dashed, min–max whiskers).
// Right: the rr round trip and the crr time per connection as bars, the value written on each.

import { sizeName } from '../args.js';
import type { BenchOutput, Result } from './command.js';
import { fmt } from './report.js';

const COLORS: Record<string, string> = { ring: '#0072B2', tcp: '#D55E00', unix: '#009E73' };
const LABELS: Record<string, string> = { ring: 'xway ring', tcp: 'TCP loopback', unix: 'Unix socket' };

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

function text(x: number, y: number, s: string, attrs = ''): string {
  return `<text x="${x.toFixed(1)}" y="${y.toFixed(1)}" ${attrs}>${esc(s)}</text>`;
}

function gbps(v: number): string {
  return v >= 1 ? `${+v.toPrecision(3)}` : `${+v.toPrecision(2)}`;
}

function throughputPanel(results: Result[], x0: number, y0: number, w: number, h: number): string {
  const rs = results.filter((r) => (r.test === 'stream' || r.test === 'maerts') && r.value.n > 0);
  const out: string[] = [];
  const left = x0 + 64, right = x0 + w - 110, top = y0 + 40, bottom = y0 + h - 56;
  out.push(text(x0 + w / 2, y0 + 18, 'Throughput against write size (higher is better)', 'text-anchor="middle" font-size="16" font-weight="bold"'));
  if (!rs.length) {
    out.push(text(x0 + w / 2, y0 + h / 2, 'no stream or maerts results', 'text-anchor="middle" fill="#666"'));
    return out.join('\n');
  }
  const sizes = [...new Set(rs.map((r) => r.size))].sort((a, b) => a - b);
  const lx = (s: number) => Math.log2(s);
  const xmin = lx(sizes[0]) - (sizes.length === 1 ? 1 : 0.3), xmax = lx(sizes.at(-1)!) + (sizes.length === 1 ? 1 : 0.3);
  const vals = rs.flatMap((r) => [r.value.min, r.value.max]).filter((v) => v > 0);
  const dmin = Math.floor(Math.log10(Math.min(...vals))), dmax = Math.ceil(Math.log10(Math.max(...vals)));
  const ymin = dmin, ymax = Math.max(dmax, dmin + 1);
  const X = (s: number) => left + ((lx(s) - xmin) / (xmax - xmin)) * (right - left);
  const Y = (v: number) => bottom - ((Math.log10(v) - ymin) / (ymax - ymin)) * (bottom - top);
  // Grid: decades (labelled) and 2/5 within them (faint).
  for (let d = ymin; d <= ymax; d++) {
    const v = 10 ** d;
    out.push(`<line x1="${left}" x2="${right}" y1="${Y(v).toFixed(1)}" y2="${Y(v).toFixed(1)}" stroke="#bbb"/>`);
    out.push(text(left - 8, Y(v) + 4, gbps(v), 'text-anchor="end" font-size="12"'));
    if (d < ymax) {
      for (const m of [2, 5]) out.push(`<line x1="${left}" x2="${right}" y1="${Y(m * v).toFixed(1)}" y2="${Y(m * v).toFixed(1)}" stroke="#eee"/>`);
    }
  }
  for (const s of sizes) {
    out.push(`<line x1="${X(s).toFixed(1)}" x2="${X(s).toFixed(1)}" y1="${top}" y2="${bottom}" stroke="#eee"/>`);
    out.push(text(X(s), bottom + 18, sizeName(s), 'text-anchor="middle" font-size="12"'));
  }
  out.push(`<rect x="${left}" y="${top}" width="${right - left}" height="${bottom - top}" fill="none" stroke="#888"/>`);
  out.push(text((left + right) / 2, bottom + 40, 'bytes per write (log scale)', 'text-anchor="middle" font-size="13"'));
  out.push(text(x0 + 16, (top + bottom) / 2, 'GB/s (1e9 B/s, log scale)', `text-anchor="middle" font-size="13" transform="rotate(-90 ${x0 + 16} ${(top + bottom) / 2})"`));
  // Lines.
  const ends: { y: number; label: string; color: string }[] = [];
  for (const test of ['stream', 'maerts'] as const) {
    for (const t of ['ring', 'tcp', 'unix']) {
      const line = rs.filter((r) => r.test === test && r.transport === t).sort((a, b) => a.size - b.size);
      if (!line.length) continue;
      const color = COLORS[t];
      const dash = test === 'maerts' ? ' stroke-dasharray="7 5"' : '';
      const pts = line.map((r) => `${X(r.size).toFixed(1)},${Y(r.value.median).toFixed(1)}`).join(' ');
      out.push(`<polyline points="${pts}" fill="none" stroke="${color}" stroke-width="2.5"${dash}/>`);
      for (const r of line) {
        const cx = X(r.size);
        out.push(`<line x1="${cx.toFixed(1)}" x2="${cx.toFixed(1)}" y1="${Y(r.value.min).toFixed(1)}" y2="${Y(r.value.max).toFixed(1)}" stroke="${color}" stroke-width="1.5"/>`);
        out.push(test === 'maerts'
          ? `<rect x="${(cx - 4).toFixed(1)}" y="${(Y(r.value.median) - 4).toFixed(1)}" width="8" height="8" fill="#fff" stroke="${color}" stroke-width="2"/>`
          : `<circle cx="${cx.toFixed(1)}" cy="${Y(r.value.median).toFixed(1)}" r="4" fill="${color}"/>`);
      }
      const last = line.at(-1)!;
      ends.push({ y: Y(last.value.median), label: `${t}${rs.some((r) => r.test === 'maerts') ? ` ${test}` : ''} ${gbps(last.value.median)}`, color });
    }
  }
  // End labels, pushed apart so they do not overlap.
  ends.sort((a, b) => a.y - b.y);
  for (let i = 1; i < ends.length; i++) if (ends[i].y - ends[i - 1].y < 15) ends[i].y = ends[i - 1].y + 15;
  for (const e of ends) out.push(text(right + 8, e.y + 4, e.label, `font-size="12" fill="${e.color}" font-weight="bold"`));
  return out.join('\n');
}

function barsPanel(results: Result[], x0: number, y0: number, w: number, h: number): string {
  const out: string[] = [];
  out.push(text(x0 + w / 2, y0 + 18, 'Time per transaction (lower is better)', 'text-anchor="middle" font-size="16" font-weight="bold"'));
  const groups = (['rr', 'crr'] as const)
    .map((test) => ({ test, rs: results.filter((r) => r.test === test && r.value.n > 0) }))
    .filter((g) => g.rs.length);
  if (!groups.length) {
    out.push(text(x0 + w / 2, y0 + h / 2, 'no rr or crr results', 'text-anchor="middle" fill="#666"'));
    return out.join('\n');
  }
  const us = (r: Result) => (r.test === 'rr' ? r.value.median : 1e6 / r.value.median);
  const usRange = (r: Result): [number, number] => (r.test === 'rr' ? [r.value.min, r.value.max] : [1e6 / r.value.max, 1e6 / r.value.min]);
  const left = x0 + 60, right = x0 + w - 20;
  let y = y0 + 48;
  const groupH = (h - 60) / groups.length;
  for (const g of groups) {
    const title = g.test === 'rr' ? 'rr: µs per round trip' : 'crr: µs per connect + request + response + close';
    out.push(text(x0 + 8, y, title, 'font-size="13" font-weight="bold"'));
    const max = Math.max(...g.rs.map((r) => usRange(r)[1]));
    const barH = Math.min(26, (groupH - 30) / g.rs.length - 8);
    let by = y + 10;
    for (const r of g.rs) {
      const color = COLORS[r.transport];
      const W = (v: number) => ((right - left - 70) * v) / max;
      out.push(text(left - 6, by + barH / 2 + 4, r.transport, 'text-anchor="end" font-size="12"'));
      out.push(`<rect x="${left}" y="${by.toFixed(1)}" width="${W(us(r)).toFixed(1)}" height="${barH.toFixed(1)}" fill="${color}"/>`);
      const [lo, hi] = usRange(r);
      out.push(`<line x1="${(left + W(lo)).toFixed(1)}" x2="${(left + W(hi)).toFixed(1)}" y1="${(by + barH / 2).toFixed(1)}" y2="${(by + barH / 2).toFixed(1)}" stroke="#333" stroke-width="1.5"/>`);
      out.push(text(left + W(Math.max(us(r), hi)) + 6, by + barH / 2 + 4, `${fmt(us(r))} µs`, 'font-size="12"'));
      by += barH + 8;
    }
    y += groupH;
  }
  return out.join('\n');
}

export function renderSvg(out: BenchOutput): string {
  const W = 1100, H = 520;
  const o = out.options;
  const parts: string[] = [];
  parts.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="DejaVu Sans, Helvetica, Arial, sans-serif">`);
  parts.push(`<rect width="${W}" height="${H}" fill="#fff"/>`);
  parts.push(text(20, 26, `xway bench — ${o.threads ? 'two threads' : 'two processes'}, medians of ${o.reps} rep(s) × ${o.duration} s; bars and whiskers: min–max`, 'font-size="15"'));
  parts.push(text(20, 46, `${out.machine.cpus} CPU(s), ${out.machine.model}; Node ${out.node}; ${out.command}`, 'font-size="12" fill="#555"'));
  parts.push(`<g>${throughputPanel(out.results, 10, 60, 680, 440)}</g>`);
  parts.push(`<g>${barsPanel(out.results, 700, 60, 390, 380)}</g>`);
  // Legend.
  let lx = 710;
  const ly = 462;
  for (const t of o.transports) {
    parts.push(`<rect x="${lx}" y="${ly - 10}" width="14" height="14" fill="${COLORS[t]}"/>`);
    parts.push(text(lx + 20, ly + 2, LABELS[t], 'font-size="13"'));
    lx += 26 + LABELS[t].length * 8;
  }
  if (out.results.some((r) => r.test === 'maerts' && r.value.n)) {
    parts.push(text(710, ly + 22, 'solid line, ●: stream (client → server)', 'font-size="12" fill="#333"'));
    parts.push(text(710, ly + 38, 'dashed line, ■: maerts (server → client)', 'font-size="12" fill="#333"'));
  }
  parts.push('</svg>');
  return parts.join('\n') + '\n';
}
