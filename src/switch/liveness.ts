// Whether the server behind an entry still runs. In our own PID namespace, its pid and start time
// say so (a recycled pid has another start time). Across PID namespaces (containers) a pid means
// nothing here: the entry's control socket answers for its server instead — it accepts while the
// server lives, and refuses (or is gone) once it died, with no /proc of the other namespace needed.

import fs from 'node:fs';
import { RegistryError, errnoOf } from './registry-directory.js';


/** Fields of /proc/<pid>/stat that xway reads. */
export interface ProcStat {
  /** Field 3: R, S, D, Z (zombie), X (dead)… */
  readonly state: string;
  /** Field 22: start time in clock ticks since boot. */
  readonly startTime: number;
}

/** Parses the text of /proc/<pid>/stat. The command name (field 2) is in parentheses and may
 *  itself contain spaces and parentheses, so fields are counted from the last ')'. */
export function parseProcStat(text: string): ProcStat | null {
  const close = text.lastIndexOf(')');
  if (close < 0) return null;
  const fields = text.slice(close + 1).trim().split(/\s+/); // fields[0] is field 3
  const state = fields[0];
  const start = fields[22 - 3];
  if (!state || start === undefined || !/^[0-9]+$/.test(start)) return null;
  const startTime = Number(start);
  return Number.isSafeInteger(startTime) ? { state, startTime } : null;
}

/** The start time of process `pid` (clock ticks since boot), or null if it does not exist or has
 *  already exited (a zombie). Throws if /proc cannot tell. */
export function processStartTime(pid: number): number | null {
  let text: string;
  try {
    text = fs.readFileSync(`/proc/${pid}/stat`, 'latin1');
  } catch (err) {
    if (errnoOf(err) === 'ENOENT' || errnoOf(err) === 'ESRCH') return null;
    throw err;
  }
  const stat = parseProcStat(text);
  if (!stat) throw new Error(`unexpected format of /proc/${pid}/stat`);
  return stat.state === 'Z' || stat.state === 'X' ? null : stat.startTime;
}

let own: { pid: number; startTime: number } | undefined;

export function ownStartTime(): number {
  if (own?.pid !== process.pid) {
    let startTime: number | null;
    try {
      startTime = processStartTime(process.pid);
    } catch (err) {
      throw new RegistryError('io', `cannot read this process's start time from /proc/${process.pid}/stat: ${(err as Error).message}`, { cause: err });
    }
    if (startTime === null) throw new RegistryError('io', `/proc/${process.pid}/stat is missing: is /proc mounted?`);
    own = { pid: process.pid, startTime };
  }
  return own.startTime;
}

export type Owner = 'alive' | 'dead' | 'unusable';

/** Whether the process that wrote an entry still runs. 'unusable': it runs but is not ours to
 *  signal (another user), or /proc cannot tell; such entries are neither used nor removed. */
export function judgeOwner(pid: number, startTime: number): Owner {
  let actual: number | null;
  try {
    actual = processStartTime(pid);
  } catch {
    return 'unusable';
  }
  // A different start time proves the owner is gone, whoever holds its pid now.
  if (actual === null || actual !== startTime) return 'dead';
  try {
    process.kill(pid, 0);
    return 'alive';
  } catch (err) {
    return errnoOf(err) === 'ESRCH' ? 'dead' : 'unusable';
  }
}

/** This process's identity as the registry records it: pid and start time. */
export function ownIdentity(): { pid: number; startTime: number } {
  return { pid: process.pid, startTime: ownStartTime() };
}

/** 'alive' while something listens on the Unix socket `path`, 'dead' when nothing does (refused, or
 *  no socket there), 'unusable' when it cannot tell (no permission, no addon). The connection is
 *  closed at once: the listener sees a client that left during set-up. */
export function probeSocket(path: string, connect: ((path: string) => number) | null, close: (fd: number) => void): Owner {
  if (!connect) return 'unusable';
  let fd: number;
  try {
    fd = connect(path);
  } catch (err) {
    const code = errnoOf(err);
    return code === 'ECONNREFUSED' || code === 'ENOENT' || code === 'ENOTSOCK' ? 'dead' : 'unusable';
  }
  try { close(fd); } catch { /* closed */ }
  return 'alive';
}
