// snapshotHost(): what `xway stat` and the visualizer's live mode show. Endpoints come from the
// registry; channels from the tables server processes publish (publish.ts). Each channel's ring
// headers are read through /proc/<pid>/fd/<fd> with pread: no mapping, no store, nothing the peers
// can notice. The tables and the headers are checked, never trusted: a row that does not describe
// a segment of its process (wrong inode, offsets outside it, a ring that is not one) is skipped.

import fs from 'node:fs';
import path from 'node:path';
import { existingRegistryDirectory, judgeOwner, listEndpoints } from '../switch/registry.js';
import { RING_HEADER, isValidCapacity } from '../ring/layout.js';
import { readRingStats, type RingStats } from '../ring/stats.js';
import { TABLE_FILE, TABLE_VERSION, type PublishedChannel } from './publish.js';
import type { ConnectionStat, ConnectionState, FallbackNote, HostSnapshot } from './types.js';
import { ownNamespaces } from '../switch/namespace.js';

const MAX_TABLE_BYTES = 16 << 20;

export function snapshotHost(): HostSnapshot {
  const at = Date.now();
  const endpoints = listEndpoints().map((e) => ({ port: e.port, host: e.host, pid: e.pid, controlPath: e.controlPath, netns: e.netns, container: e.container }));
  const dir = existingRegistryDirectory();
  const connections: ConnectionStat[] = [];
  const notes: FallbackNote[] = [];
  if (dir) {
    for (const name of fs.readdirSync(dir)) {
      const match = TABLE_FILE.exec(name);
      // A table of another PID namespace (another container) names pids we cannot see or judge.
      if (match && match[4] === (ownNamespaces().pidns || '0')) connections.push(...readTable(path.join(dir, name), Number(match[1]), Number(match[2]), notes));
    }
  }
  connections.sort((a, b) => a.port - b.port || a.since - b.since);
  notes.sort((a, b) => a.at - b.at);
  return { at, endpoints, connections: onceEach(connections), notes };
}

/** What identifies a listed channel whichever end lists it, and the rows listed by a client. */
const keys = new WeakMap<ConnectionStat, string>();
const clientRows = new WeakSet<ConnectionStat>();

/** A connection whose both ends are in sight is listed by both (the server's row, and the
 *  client's when it crossed namespaces): keep the server's. */
function onceEach(connections: ConnectionStat[]): ConnectionStat[] {
  const seen = new Set<string>();
  const out: ConnectionStat[] = [];
  for (const c of [...connections].sort((a, b) => Number(clientRows.has(a)) - Number(clientRows.has(b)))) {
    const key = keys.get(c);
    if (key !== undefined && seen.has(key)) continue;
    if (key !== undefined) seen.add(key);
    out.push(c);
  }
  return out.sort((a, b) => a.port - b.port || a.since - b.since);
}

function readTable(file: string, pid: number, startTime: number, notes: FallbackNote[]): ConnectionStat[] {
  const place: { netns?: string; container?: string } = {};
  const owner = judgeOwner(pid, startTime);
  if (owner === 'dead') {
    try { fs.unlinkSync(file); } catch { /* another observer was first */ }
    return [];
  }
  if (owner !== 'alive') return [];
  let rows: unknown;
  try {
    const text = fs.readFileSync(file, 'utf8');
    if (text.length > MAX_TABLE_BYTES) return [];
    const table = JSON.parse(text) as { version?: unknown; pid?: unknown; channels?: unknown; notes?: unknown; netns?: unknown; container?: unknown };
    if (table.version !== TABLE_VERSION || table.pid !== pid) return [];
    rows = table.channels;
    if (typeof table.netns === 'string') place.netns = table.netns.slice(0, 20);
    if (typeof table.container === 'string') place.container = table.container.slice(0, 64);
    if (Array.isArray(table.notes)) {
      for (const n of table.notes.slice(-20)) {
        if (n && typeof n.at === 'number' && typeof n.text === 'string') notes.push({ pid, at: n.at, text: n.text.slice(0, 300) });
      }
    }
  } catch {
    return []; // replaced or removed while we read it
  }
  if (!Array.isArray(rows)) return [];
  const out: ConnectionStat[] = [];
  for (const row of rows) {
    const stat = isRow(row) ? readChannel(pid, row) : isCopiedRow(row) ? fromCopy(pid, row) : null;
    if (!stat) continue;
    const r = row as { clientNetns?: unknown; clientContainer?: unknown; server?: { pid?: unknown; netns?: unknown; container?: unknown } };
    const text = (v: unknown, n: number) => (typeof v === 'string' ? v.slice(0, n) : undefined);
    if (r.server && typeof r.server === 'object') {
      // A client's own row: the server is in another namespace.
      clientRows.add(stat);
      if (Number.isInteger(r.server.pid)) stat.serverPid = r.server.pid as number;
      stat.serverNetns = text(r.server.netns, 20);
      stat.serverContainer = text(r.server.container, 64);
      stat.clientNetns = place.netns;
      stat.clientContainer = place.container;
    } else {
      stat.serverNetns = place.netns;
      stat.serverContainer = place.container;
      stat.clientNetns = text(r.clientNetns, 20);
      stat.clientContainer = text(r.clientContainer, 64);
    }
    out.push(stat);
  }
  return out;
}

function isRow(r: unknown): r is PublishedChannel {
  if (r === null || typeof r !== 'object') return false;
  const o = r as Record<string, unknown>;
  const int = (k: string) => Number.isSafeInteger(o[k]) && (o[k] as number) >= 0;
  return typeof o.id === 'string' && o.id.length < 64 && o.platform === 'host'
    && ['port', 'clientPid', 'since', 'fd', 'ino', 'size', 'offsetA', 'offsetB'].every(int)
    && isValidCapacity(o.capacityA) && isValidCapacity(o.capacityB)
    && (o.offsetA as number) + RING_HEADER <= (o.size as number) && (o.offsetB as number) + RING_HEADER <= (o.size as number);
}

/** A Xen row: counters copied by the publishing process (see publish.ts), checked like a header. */
function isCopiedRow(r: unknown): r is PublishedChannel & { copy: NonNullable<PublishedChannel['copy']> } {
  if (r === null || typeof r !== 'object') return false;
  const o = r as Record<string, unknown>;
  const copy = o.copy as Record<string, unknown> | undefined;
  return o.platform === 'xen' && typeof o.id === 'string' && o.id.length < 64
    && Number.isSafeInteger(o.port) && Number.isSafeInteger(o.clientPid) && Number.isSafeInteger(o.since)
    && copy !== undefined && typeof copy === 'object' && copy !== null
    && typeof copy.clientToServer === 'object' && typeof copy.serverToClient === 'object';
}

const COUNTERS = ['capacity', 'head', 'tail', 'used', 'producerWantsSpace', 'producerWaits', 'producerNotifies', 'consumerWaits', 'consumerNotifies'] as const;

function statsFromCopy(o: Record<string, unknown>): RingStats | null {
  if (!COUNTERS.every((k) => Number.isSafeInteger(o[k]) && (o[k] as number) >= 0)) return null;
  if (typeof o.bytesIn !== 'string' || typeof o.bytesOut !== 'string' || !/^\d{1,20}$/.test(o.bytesIn) || !/^\d{1,20}$/.test(o.bytesOut)) return null;
  const stats = {
    ...Object.fromEntries(COUNTERS.map((k) => [k, o[k] as number])),
    finished: o.finished === true, reset: o.reset === true, consumerClosed: o.consumerClosed === true,
    consumerWaiting: o.consumerWaiting === true,
    bytesIn: BigInt(o.bytesIn), bytesOut: BigInt(o.bytesOut),
  } as unknown as RingStats;
  stats.consistent = isValidCapacity(stats.capacity) && stats.used <= stats.capacity && o.consistent === true;
  return stats.consistent ? stats : null;
}

function fromCopy(pid: number, row: PublishedChannel & { copy: NonNullable<PublishedChannel['copy']> }): ConnectionStat | null {
  const a = statsFromCopy(row.copy.clientToServer);
  const b = statsFromCopy(row.copy.serverToClient);
  if (!a || !b) return null;
  return {
    id: row.id, platform: 'xen', port: row.port, serverPid: pid, clientPid: row.clientPid, since: row.since,
    state: stateOf(a, b), clientToServer: a, serverToClient: b,
  };
}

function readChannel(pid: number, row: PublishedChannel): ConnectionStat | null {
  let fd: number;
  try {
    fd = fs.openSync(`/proc/${pid}/fd/${row.fd}`, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK); // a reused number may name a FIFO
  } catch {
    return null; // closed meanwhile, or not ours to open
  }
  try {
    const st = fs.fstatSync(fd);
    if (!st.isFile() || st.ino !== row.ino || st.size < row.size) return null;
    const a = readHeader(fd, row.offsetA);
    const b = readHeader(fd, row.offsetB);
    if (!a.consistent || !b.consistent || a.capacity !== row.capacityA || b.capacity !== row.capacityB) return null;
    const stat: ConnectionStat = {
      id: row.id, platform: row.platform, port: row.port, serverPid: pid, clientPid: row.clientPid, since: row.since,
      state: stateOf(a, b), clientToServer: a, serverToClient: b,
    };
    keys.set(stat, `${st.ino}:${row.offsetA}`); // the same memfd and place, whichever end lists it
    return stat;
  } catch {
    return null;
  } finally {
    fs.closeSync(fd);
  }
}

function readHeader(fd: number, offset: number): RingStats {
  const bytes = new Uint8Array(new SharedArrayBuffer(RING_HEADER));
  fs.readSync(fd, bytes, 0, RING_HEADER, offset);
  return readRingStats(bytes.buffer as SharedArrayBuffer, 0);
}

function stateOf(a: RingStats, b: RingStats): ConnectionState {
  if (a.reset || b.reset) return 'reset';
  if (a.finished && b.finished) return 'closed';
  if (a.finished || b.finished) return 'half-closed';
  return 'open';
}
