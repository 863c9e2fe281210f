// The format of one registry entry, `port-<port>.json` (or, for further workers of a cluster
// serving the same port, `member-<port>-<pid>-<start>.json`), and the checks a reader applies.
// Pure functions: no file system here. A reader trusts nothing in an entry: every field is checked
// for type and range, and the control socket path must lie in the registry directory itself.
//
// Every format version keeps `version`, `pid` and `startTime` with the meaning they have here, so
// an xway that reads an entry of a newer format can still tell a live owner from a dead one.

import path from 'node:path';
import { isValidCapacity } from '../ring/layout.js';

export const ENTRY_VERSION = 1;
/** Entries are a few hundred bytes; anything larger is garbage and is not read further. */
export const MAX_ENTRY_BYTES = 4096;
/** sun_path holds 108 bytes including the terminating NUL. */
export const MAX_SOCKET_PATH_BYTES = 107;
/** Linux never hands out pids above 2^22 (PID_MAX_LIMIT). */
export const MAX_PID = 4_194_304;
const MAX_HOST_LENGTH = 255;

/** What a registry entry says about a listening endpoint. */
export interface RegistryEntry {
  /** Format version, always 1 for this format. */
  readonly version: 1;
  /** TCP port the server listens on (1–65535); also the entry's file name. */
  readonly port: number;
  /** Host the server listens on, as given to `listen` ('' or '0.0.0.0' for all addresses). */
  readonly host: string;
  /** Process that owns the endpoint. */
  readonly pid: number;
  /** Start time of `pid` in clock ticks since boot (/proc/<pid>/stat field 22): tells the owner
   *  from a later process that was given the same pid. */
  readonly startTime: number;
  /** Unix control socket of the endpoint, always inside the registry directory. */
  readonly controlPath: string;
  /** Ring capacity clients should ask for (a power of two, bytes). */
  readonly ringCapacity: number;
  /** When the entry was written, in milliseconds since the epoch. */
  readonly createdAt: number;
  /** Set by the workers of a Node cluster (the primary's pid): workers of one group may each
   *  register the same port, as members beside the first one's entry, and clients spread their
   *  connections over them. */
  readonly group?: number;
}

/** The result of reading an entry's text. */
export type DecodedEntry =
  | { readonly kind: 'entry'; readonly entry: RegistryEntry }
  /** A format this xway does not know; only its owner can be judged. */
  | { readonly kind: 'newer'; readonly version: number; readonly pid: number; readonly startTime: number }
  /** Garbage. `controlPath` is passed on when it is a path inside the registry directory, so the
   *  caller may clean up a socket that a dead owner left behind. */
  | { readonly kind: 'invalid'; readonly why: string; readonly controlPath?: string };

export function entryFileName(port: number): string {
  return `port-${port}.json`;
}

/** The file of a further cluster worker serving `port` (see RegistryEntry.group). */
export function memberFileName(port: number, pid: number, startTime: number): string {
  return `member-${port}-${pid}-${startTime}.json`;
}

/** The port named by a member file name, or null for any other name. */
export function portOfMemberFile(name: string): number | null {
  const m = /^member-([1-9][0-9]{0,4})-[1-9][0-9]*-[0-9]+\.json$/.exec(name);
  const port = m ? Number(m[1]) : NaN;
  return isPort(port) ? port : null;
}

/** The port named by an entry file name, or null for any other name. */
export function portOfEntryFile(name: string): number | null {
  const m = /^port-([1-9][0-9]{0,4})\.json$/.exec(name);
  const port = m ? Number(m[1]) : NaN;
  return isPort(port) ? port : null;
}

export function isPort(n: unknown): n is number {
  return Number.isInteger(n) && (n as number) >= 1 && (n as number) <= 65535;
}

export function isPid(n: unknown): n is number {
  return Number.isInteger(n) && (n as number) >= 1 && (n as number) <= MAX_PID;
}

export function isStartTime(n: unknown): n is number {
  return Number.isSafeInteger(n) && (n as number) >= 0;
}

export function isHost(s: unknown): s is string {
  return typeof s === 'string' && s.length <= MAX_HOST_LENGTH && !/[\0-\x1f]/.test(s);
}

/** Why `p` is not acceptable as a control socket path in registry directory `dir` (an absolute,
 *  resolved path), or null if it is. */
export function controlPathProblem(p: unknown, dir: string): string | null {
  if (typeof p !== 'string') return 'controlPath is not a string';
  if (!path.isAbsolute(p) || path.resolve(p) !== p) return 'controlPath is not an absolute, normalised path';
  if (path.dirname(p) !== dir) return `controlPath ${JSON.stringify(p)} is not inside the registry directory ${dir}`;
  const base = path.basename(p);
  // Entries and our temporary files are never sockets; refuse names that could collide with them.
  if (base.startsWith('.') || portOfEntryFile(base) !== null || portOfMemberFile(base) !== null) return `controlPath ${JSON.stringify(p)} names a registry file`;
  if (p.includes('\0')) return 'controlPath contains a NUL byte';
  const bytes = Buffer.byteLength(p);
  if (bytes > MAX_SOCKET_PATH_BYTES) return `controlPath is ${bytes} bytes, more than a Unix socket path can hold (${MAX_SOCKET_PATH_BYTES})`;
  return null;
}

export function encodeEntry(entry: RegistryEntry): string {
  const { version, port, host, pid, startTime, controlPath, ringCapacity, createdAt, group } = entry;
  return JSON.stringify({ version, port, host, pid, startTime, controlPath, ringCapacity, createdAt, group }) + '\n';
}

/** Parses and checks the text of `port-<port>.json` read from registry directory `dir`. */
export function decodeEntry(text: string, port: number, dir: string): DecodedEntry {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { kind: 'invalid', why: 'not JSON' };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return { kind: 'invalid', why: 'not a JSON object' };
  const o = value as Record<string, unknown>;
  const controlPath = typeof o.controlPath === 'string' && controlPathProblem(o.controlPath, dir) === null ? o.controlPath : undefined;
  const invalid = (why: string): DecodedEntry => ({ kind: 'invalid', why, controlPath });

  if (!Number.isSafeInteger(o.version) || (o.version as number) < 1) return invalid('version is not a positive integer');
  if (!isPid(o.pid)) return invalid('pid is not an integer from 1 to ' + MAX_PID);
  if (!isStartTime(o.startTime)) return invalid('startTime is not a non-negative integer');
  if (o.version !== ENTRY_VERSION) {
    return { kind: 'newer', version: o.version as number, pid: o.pid, startTime: o.startTime };
  }
  if (!isPort(o.port)) return invalid('port is not an integer from 1 to 65535');
  if (o.port !== port) return invalid(`port ${o.port} does not match the file name (${entryFileName(port)})`);
  if (!isHost(o.host)) return invalid('host is not a string of at most 255 printable characters');
  const problem = controlPathProblem(o.controlPath, dir);
  if (problem) return invalid(problem);
  if (!Number.isInteger(o.ringCapacity) || !isValidCapacity(o.ringCapacity as number)) return invalid('ringCapacity is not a valid ring capacity');
  if (!isStartTime(o.createdAt)) return invalid('createdAt is not a non-negative integer');
  if (o.group !== undefined && !isPid(o.group)) return invalid('group is not a process id');

  return {
    kind: 'entry',
    entry: {
      version: ENTRY_VERSION,
      port: o.port,
      host: o.host,
      pid: o.pid,
      startTime: o.startTime,
      controlPath: o.controlPath as string,
      ringCapacity: o.ringCapacity as number,
      createdAt: o.createdAt as number,
      ...(o.group !== undefined ? { group: o.group as number } : {}),
    },
  };
}
