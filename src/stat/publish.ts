// The channel table a server process publishes for observers (`xway stat`, `xway visualize`).
// One owner-only file per thread, `channels-<pid>-<start>-<thread>-<pidns>.json` beside the registry entries,
// lists each host channel the process accepted with the descriptor of its segment. An observer of
// the same user opens /proc/<pid>/fd/<fd> read-only and reads the ring headers from it (snapshot.ts):
// the peers never see it. The file is rewritten at most every flushInterval(), so a burst of connections
// costs one write, and it is removed when the last channel closes or the process exits.
//
// A Xen channel's pages are granted by another domain: no descriptor of ours can show them to an
// observer. For those the table carries a copy of the two ring headers' counters instead, made
// by this process (plain loads, like any observer's) and refreshed every COPY_MS while any exist.

import fs from 'node:fs';
import path from 'node:path';
import { threadId } from 'node:worker_threads';
import { CHANNEL_HEADER, RING_HEADER } from '../ring/layout.js';
import type { RingStats } from '../ring/stats.js';
import { ensureRegistryDirectory, ownIdentity } from '../switch/registry.js';
import { ownNamespaces } from '../switch/namespace.js';

export const TABLE_VERSION = 1;
/** How often the table may be rewritten: soon while it is small (an observer looking right after a
 *  connection should see it), less often as it grows (a burst of thousands is one write a second). */
const flushInterval = () => (rows.size < 100 ? 20 : rows.size < 1000 ? 100 : 1000);
const COPY_MS = 500;
export const TABLE_FILE = /^channels-([0-9]+)-([0-9]+)-([0-9]+)-([0-9]+)\.json$/;

/** One row of the table: where an observer finds a channel's two ring headers. */
export interface PublishedChannel {
  id: string;
  platform: 'host' | 'xen';
  port: number;
  clientPid: number;
  since: number;
  /** The segment's descriptor in the publishing process, and its inode (so a reused descriptor
   *  number is never mistaken for the segment). */
  fd: number;
  ino: number;
  size: number;
  capacityA: number;
  capacityB: number;
  /** Offsets of ring A and ring B inside the segment. */
  offsetA: number;
  offsetB: number;
  /** Xen rows: the counters as this process last read them (bigints as decimal strings). */
  copy?: { at: number; clientToServer: Record<string, unknown>; serverToClient: Record<string, unknown> };
  /** Where the client says it lives (network namespace, container name). */
  clientNetns?: string;
  clientContainer?: string;
  /** Present on a row this process publishes as the client: the server. */
  server?: { pid: number; netns: string; container: string };
}

/** A channel whose rings only this process can read (Xen): `read()` gives ring A (client to
 *  server) and ring B. */
export interface CopiedChannel {
  port: number;
  /** The client's domain id. */
  clientDomain: number;
  read(): [RingStats, RingStats];
}

export interface ChannelTable {
  version: number;
  pid: number;
  startTime: number;
  channels: PublishedChannel[];
  /** Where this (server) process lives. */
  netns?: string;
  container?: string;
  /** Why recent connections of this process took TCP rather than a ring (limits, refusals). */
  notes?: { at: number; text: string }[];
}

const MAX_NOTES = 20;
const notes: { at: number; text: string }[] = [];

/** Records why a connection took TCP (shown by xway stat). Never throws. */
export function noteFallback(text: string): void {
  notes.push({ at: Date.now(), text: text.slice(0, 300) });
  if (notes.length > MAX_NOTES) notes.shift();
  schedule();
}

export interface ChannelToPublish {
  port: number;
  clientPid: number;
  /** The memfd holding the channel, and where in it the channel begins. */
  segmentFd: number;
  /** The segment's inode, if the caller knows it (saves an fstat per connection). */
  segmentIno?: number;
  fileOffset?: number;
  /** Bytes of the channel. */
  size: number;
  /** Where the client says it lives. */
  clientPlace?: { netns?: string; container?: string };
  /** Set when this process is the *client* of the channel (listed because the server is in another
   *  namespace, out of sight of our observers): who the server is. */
  server?: { pid: number; netns: string; container: string };
  capacityA: number;
  capacityB: number;
}

const rows = new Map<string, PublishedChannel>();
const copied = new Map<string, CopiedChannel>();
let copier: NodeJS.Timeout | null = null;

/** Lists a Xen channel, with copies of its counters; returns the function that removes it. */
export function publishCopiedChannel(c: CopiedChannel): () => void {
  const id = `${process.pid}:${++counter}`;
  rows.set(id, {
    id, platform: 'xen', port: c.port, clientPid: c.clientDomain, since: Date.now(),
    fd: -1, ino: 0, size: 0, capacityA: 0, capacityB: 0, offsetA: 0, offsetB: 0,
  });
  copied.set(id, c);
  if (!copier) {
    copier = setInterval(schedule, COPY_MS);
    copier.unref();
  }
  schedule();
  return () => {
    copied.delete(id);
    if (copied.size === 0 && copier) {
      clearInterval(copier);
      copier = null;
    }
    if (rows.delete(id)) schedule();
  };
}

const plain = (stats: RingStats): Record<string, unknown> =>
  Object.fromEntries(Object.entries(stats).map(([k, v]) => [k, typeof v === 'bigint' ? v.toString() : v]));

function refreshCopies(): void {
  for (const [id, c] of copied) {
    const row = rows.get(id);
    if (!row) continue;
    try {
      const [a, b] = c.read();
      row.capacityA = a.capacity;
      row.capacityB = b.capacity;
      row.copy = { at: Date.now(), clientToServer: plain(a), serverToClient: plain(b) };
    } catch { /* closed meanwhile */ }
  }
}
let counter = 0;
let timer: NodeJS.Timeout | null = null;
let file: string | null = null;
let exitHook = false;

/** Lists a channel in this process's table; returns the function that removes it. Never throws:
 *  observing is optional, serving is not. */
export function publishChannel(c: ChannelToPublish): () => void {
  let row: PublishedChannel;
  try {
    const ino = c.segmentIno ?? fs.fstatSync(c.segmentFd).ino;
    const at = c.fileOffset ?? 0;
    row = {
      id: `${process.pid}:${++counter}`, platform: 'host', port: c.port, clientPid: c.clientPid, since: Date.now(),
      fd: c.segmentFd, ino, size: at + c.size, capacityA: c.capacityA, capacityB: c.capacityB,
      offsetA: at + CHANNEL_HEADER, offsetB: at + CHANNEL_HEADER + RING_HEADER + c.capacityA,
      ...(c.clientPlace?.netns !== undefined ? { clientNetns: c.clientPlace.netns } : {}),
      ...(c.clientPlace?.container !== undefined ? { clientContainer: c.clientPlace.container } : {}),
      ...(c.server ? { server: c.server } : {}),
    };
  } catch {
    return () => {};
  }
  rows.set(row.id, row);
  schedule();
  return () => {
    if (rows.delete(row.id)) schedule();
  };
}

let lastFlush = 0;

/** Writes the table soon: at once after a quiet spell (an observer looking right after a
 *  connection sees it), at most every flushInterval() during a burst. */
function schedule(): void {
  if (timer) return;
  const wait = lastFlush + flushInterval() - Date.now();
  if (wait <= 0) return flush();
  timer = setTimeout(flush, wait);
  timer.unref();
}

function flush(): void {
  timer = null;
  lastFlush = Date.now();
  try {
    if (rows.size === 0 && notes.length === 0) {
      removeTable();
      return;
    }
    refreshCopies();
    const { pid, startTime } = ownIdentity();
    const dir = ensureRegistryDirectory();
    file ??= path.join(dir, `channels-${pid}-${startTime}-${threadId}-${ownNamespaces().pidns || '0'}.json`);
    const { netns, container } = ownNamespaces();
    const table: ChannelTable = { version: TABLE_VERSION, pid, startTime, netns, container, channels: [...rows.values()], notes };
    const temp = `${file}.tmp`;
    fs.writeFileSync(temp, JSON.stringify(table), { mode: 0o600 });
    fs.renameSync(temp, file);
    if (!exitHook) {
      exitHook = true;
      process.once('exit', removeTable);
    }
  } catch {
    // An unwritable registry only hides this process from observers.
  }
}

function removeTable(): void {
  if (!file) return;
  try { fs.unlinkSync(file); } catch { /* already gone */ }
}
