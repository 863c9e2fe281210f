// The channel table a server process publishes for observers (`xway stat`, `xway visualize`).
// One owner-only file per thread, `channels-<pid>-<start>-<thread>.json` beside the registry entries,
// lists each host channel the process accepted with the descriptor of its segment. An observer of
// the same user opens /proc/<pid>/fd/<fd> read-only and reads the ring headers from it (snapshot.ts):
// the peers never see it. The file is rewritten at most every FLUSH_MS, so a burst of connections
// costs one write, and it is removed when the last channel closes or the process exits.

import fs from 'node:fs';
import path from 'node:path';
import { threadId } from 'node:worker_threads';
import { CHANNEL_HEADER, RING_HEADER } from '../ring/layout.js';
import { ensureRegistryDirectory, ownIdentity } from '../switch/registry.js';

export const TABLE_VERSION = 1;
const FLUSH_MS = 100;
export const TABLE_FILE = /^channels-([0-9]+)-([0-9]+)-([0-9]+)\.json$/;

/** One row of the table: where an observer finds a channel's two ring headers. */
export interface PublishedChannel {
  id: string;
  platform: 'host';
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
}

export interface ChannelTable {
  version: number;
  pid: number;
  startTime: number;
  channels: PublishedChannel[];
}

export interface ChannelToPublish {
  port: number;
  clientPid: number;
  segmentFd: number;
  size: number;
  capacityA: number;
  capacityB: number;
}

const rows = new Map<string, PublishedChannel>();
let counter = 0;
let timer: NodeJS.Timeout | null = null;
let file: string | null = null;
let exitHook = false;

/** Lists a channel in this process's table; returns the function that removes it. Never throws:
 *  observing is optional, serving is not. */
export function publishChannel(c: ChannelToPublish): () => void {
  let row: PublishedChannel;
  try {
    const ino = fs.fstatSync(c.segmentFd).ino;
    row = {
      id: `${process.pid}:${++counter}`, platform: 'host', port: c.port, clientPid: c.clientPid, since: Date.now(),
      fd: c.segmentFd, ino, size: c.size, capacityA: c.capacityA, capacityB: c.capacityB,
      offsetA: CHANNEL_HEADER, offsetB: CHANNEL_HEADER + RING_HEADER + c.capacityA,
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

function schedule(): void {
  if (timer) return;
  timer = setTimeout(flush, FLUSH_MS);
  timer.unref();
}

function flush(): void {
  timer = null;
  try {
    if (rows.size === 0) {
      removeTable();
      return;
    }
    const { pid, startTime } = ownIdentity();
    const dir = ensureRegistryDirectory();
    file ??= path.join(dir, `channels-${pid}-${startTime}-${threadId}.json`);
    const table: ChannelTable = { version: TABLE_VERSION, pid, startTime, channels: [...rows.values()] };
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
