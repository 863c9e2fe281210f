// `xway stat`: the live xway endpoints and connections of this host, like ss. Everything comes
// from snapshotHost() (src/stat/snapshot.ts), which reads the registry and the rings' published
// counters with plain loads: watching never disturbs the peers.

import { parseFlags, parseNumber, UsageError } from './args.js';
import { snapshotHost } from '../stat/snapshot.js';
import type { ConnectionStat, HostSnapshot } from '../stat/types.js';

export const STAT_HELP = `Usage: xway stat [options]

Lists the xway endpoints (servers listening through xway) and ring connections on this host, like
ss: per connection its id, platform, port, server pid and client pid (dom<id> for a client in another Xen domain), ring sizes, how full each
direction is, bytes moved each way, notifications (wake-ups) each way and its state (open,
half-closed, closed, reset). Reads only what the registry and the rings' counters publish; it never
disturbs the peers. Only this user's registry is visible (XWAY_DIR, else XDG_RUNTIME_DIR/xway, else
/tmp/xway-<uid>).

Columns: c→s is the client-to-server direction, s→c the reverse; fill is the share of the ring
holding unread bytes; wakes counts notifications sent that way (data ready, or space freed).

Options:
  --watch [MS]   refresh in place every MS milliseconds (default 1000); Ctrl-C stops
  --json         the snapshot as JSON (64-bit counters as numbers, or strings past 2^53);
                 with --watch, one JSON document per line
  -h, --help     this text

Examples:
  xway stat
  xway stat --watch 250
  xway stat --json | jq '.connections[] | {id, state}'`;

// ---- formatting ------------------------------------------------------------------------------

export function bytes(n: bigint | number): string {
  const v = Number(n);
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0, x = v;
  while (x >= 1024 && i < units.length - 1) { x /= 1024; i++; }
  return i === 0 ? `${v} B` : `${x.toFixed(x >= 100 ? 0 : 1)} ${units[i]}`;
}

const ringSize = (n: number) => (n >= 1 << 20 ? `${n / (1 << 20)}M` : `${n / 1024}K`);
const fill = (used: number, capacity: number) => (capacity > 0 ? `${((100 * used) / capacity).toFixed(used && used < capacity / 200 ? 1 : 0)}%` : '—');

function age(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

/** Columns `left` (by index) are left-aligned, the others (numbers) right-aligned. */
function table(rows: string[][], left: number[]): string[] {
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => [...r[c]].length)));
  return rows.map((r) => r.map((cell, c) => (left.includes(c) ? cell.padEnd(widths[c]) : cell.padStart(widths[c]))).join('  ').trimEnd());
}

/** Notifications sent from the client to the server: data ready on c→s, space freed on s→c. */
export function wakes(c: ConnectionStat): { toServer: number; toClient: number } {
  return {
    toServer: c.clientToServer.producerNotifies + c.serverToClient.consumerNotifies,
    toClient: c.serverToClient.producerNotifies + c.clientToServer.consumerNotifies,
  };
}

export function formatSnapshot(s: HostSnapshot): string[] {
  const lines: string[] = [];
  lines.push(`xway endpoints: ${s.endpoints.length}`);
  if (s.endpoints.length) {
    lines.push(...table([['port', 'host', 'pid', 'netns', 'container', 'control socket'], ...s.endpoints.map((e) => [String(e.port), e.host, String(e.pid), e.netns || '—', e.container || '—', e.controlPath])], [1, 3, 4, 5])
      .map((l) => `  ${l}`));
  }
  lines.push('');
  lines.push(`xway connections: ${s.connections.length}`);
  if (s.connections.length) {
    const head = ['id', 'platform', 'port', 'server', 'client', 'ring c→s/s→c', 'fill c→s', 'fill s→c', 'bytes c→s', 'bytes s→c', 'wakes c→s', 'wakes s→c', 'state', 'age'];
    const rows = s.connections.map((c) => {
      const a = c.clientToServer, b = c.serverToClient;
      const w = wakes(c);
      const suspect = a.consistent && b.consistent ? '' : ' (inconsistent header)';
      const at = (pid: string, container?: string) => (container ? `${pid}@${container}` : pid);
      return [c.id, c.platform, String(c.port), at(String(c.serverPid), c.serverContainer), c.platform === 'xen' ? `dom${c.clientPid}` : at(String(c.clientPid), c.clientContainer),
        `${ringSize(a.capacity)}/${ringSize(b.capacity)}`, fill(a.used, a.capacity), fill(b.used, b.capacity),
        bytes(a.bytesIn), bytes(b.bytesIn), String(w.toServer), String(w.toClient), c.state + suspect, age(s.at - c.since)];
    });
    // id, platform, state and age left-aligned; numbers right-aligned.
    const t = table([head, ...rows], [0, 1, 12, 13]);
    lines.push(...t.map((l) => `  ${l}`));
  }
  if (s.notes.length) {
    lines.push('');
    lines.push('recent connections that took TCP instead of a ring:');
    for (const n of s.notes) lines.push(`  ${age(s.at - n.at)} ago, pid ${n.pid}: ${n.text}`);
  }
  return lines;
}

/** JSON with 64-bit counters as numbers (or strings when they do not fit in a double exactly). */
export function snapshotJson(s: HostSnapshot, indent?: number): string {
  return JSON.stringify(s, (_k, v) => (typeof v === 'bigint' ? (v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v.toString()) : v), indent);
}

// ---- the command --------------------------------------------------------------------------------

export async function statCommand(argv: string[]): Promise<void> {
  // `--watch 500`: parseArgs has no optional values, so a number after --watch is its interval.
  const args: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--watch' && i + 1 < argv.length && /^\d+(\.\d+)?$/.test(argv[i + 1])) {
      args.push(`--watch-ms=${argv[++i]}`);
    } else if (a.startsWith('--watch=')) {
      args.push(`--watch-ms=${a.slice('--watch='.length)}`);
    } else if (a.startsWith('--watch-ms')) {
      throw new UsageError(`unknown flag '${a.split('=')[0]}'`);
    } else args.push(a);
  }
  const { values: v } = parseFlags(args, {
    watch: { type: 'boolean' }, 'watch-ms': { type: 'string' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' },
  });
  if (v.help) {
    process.stdout.write(STAT_HELP + '\n');
    return;
  }
  const watchMs = v['watch-ms'] !== undefined ? parseNumber('watch', v['watch-ms']) : v.watch ? 1000 : 0;
  if (watchMs && watchMs < 50) throw new UsageError(`flag '--watch' takes milliseconds ≥ 50, got ${watchMs}`);

  if (!watchMs) {
    const s = snapshotHost();
    process.stdout.write(v.json ? snapshotJson(s, 2) + '\n' : formatSnapshot(s).join('\n') + '\n');
    return;
  }

  const tty = !!process.stdout.isTTY && !v.json;
  let printed = 0;
  const draw = () => {
    const s = snapshotHost();
    if (v.json) {
      process.stdout.write(snapshotJson(s) + '\n');
      return;
    }
    const lines = [`${new Date(s.at).toLocaleTimeString()}  every ${watchMs} ms, Ctrl-C to stop`, ...formatSnapshot(s)];
    // Move up over the previous table and clear it; a pipe gets one table after another.
    if (tty && printed) process.stdout.write(`\x1b[${printed}A\r\x1b[J`);
    process.stdout.write(lines.join('\n') + '\n' + (tty ? '' : '\n'));
    printed = lines.length;
  };
  await new Promise<void>((resolve) => {
    draw();
    const timer = setInterval(draw, watchMs);
    const stop = () => {
      clearInterval(timer);
      process.removeListener('SIGINT', stop);
      process.removeListener('SIGTERM', stop);
      resolve();
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
}
