// The format of one registry entry, `port-<port>-<netns>.json` (or, for further workers of a
// cluster serving the same port, `member-<port>-<netns>-<pid>-<start>.json`), and the checks a
// reader applies. An entry is keyed by its server's network namespace as well as its port: a
// directory shared by containers holds the entries of each, and two servers on one port in two
// namespaces are two entries.
// Pure functions: no file system here. A reader trusts nothing in an entry: every field is checked
// for type and range, and the control socket path must lie in the registry directory itself.
//
// Every format version keeps `version`, `pid` and `startTime` with the meaning they have here, so
// an xway that reads an entry of a newer format can still tell a live owner from a dead one.

import net from 'node:net';
import path from 'node:path';
import { isValidCapacity } from '../ring/layout.js';

export const ENTRY_VERSION = 2;
/** Entries are a few hundred bytes; anything larger is garbage and is not read further. */
export const MAX_ENTRY_BYTES = 4096;
/** sun_path holds 108 bytes including the terminating NUL. */
export const MAX_SOCKET_PATH_BYTES = 107;
/** Linux never hands out pids above 2^22 (PID_MAX_LIMIT). */
export const MAX_PID = 4_194_304;
const MAX_HOST_LENGTH = 255;
const MAX_ADDRESSES = 64;
const MAX_NAME_LENGTH = 64;

/** What a registry entry says about a listening endpoint. */
export interface RegistryEntry {
  /** Format version, always 2 for this format. */
  readonly version: 2;
  /** TCP port the server listens on (1–65535); also in the entry's file name. */
  readonly port: number;
  /** Host the server listens on, as given to `listen` ('' or '0.0.0.0' for all addresses). */
  readonly host: string;
  /** The addresses it accepts connections on in its network namespace (every interface address
   *  for a wildcard): a client in another namespace connecting to one of them reaches it. */
  readonly addresses: readonly string[];
  /** Its network and PID namespaces (inode numbers of /proc/<pid>/ns/net and …/pid, or ''). */
  readonly netns: string;
  readonly pidns: string;
  /** A name a person recognises: the container's, or the host name. */
  readonly container: string;
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

/** The namespace part of a file name ('0' where /proc could not tell). */
const nsPart = (netns: string) => (netns === '' ? '0' : netns);

export function entryFileName(port: number, netns: string): string {
  return `port-${port}-${nsPart(netns)}.json`;
}

/** The file of a further cluster worker serving `port` (see RegistryEntry.group). */
export function memberFileName(port: number, netns: string, pid: number, startTime: number): string {
  return `member-${port}-${nsPart(netns)}-${pid}-${startTime}.json`;
}

/** The port and namespace named by a member file name, or null for any other name. */
export function parseMemberFile(name: string): { port: number; netns: string } | null {
  const m = /^member-([1-9][0-9]{0,4})-([0-9]{1,20})-[1-9][0-9]*-[0-9]+\.json$/.exec(name);
  return m && isPort(Number(m[1])) ? { port: Number(m[1]), netns: m[2] === '0' ? '' : m[2] } : null;
}

/** The port and namespace named by an entry file name, or null for any other name. */
export function parseEntryFile(name: string): { port: number; netns: string } | null {
  const m = /^port-([1-9][0-9]{0,4})-([0-9]{1,20})\.json$/.exec(name);
  return m && isPort(Number(m[1])) ? { port: Number(m[1]), netns: m[2] === '0' ? '' : m[2] } : null;
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
  if (base.startsWith('.') || parseEntryFile(base) !== null || parseMemberFile(base) !== null || base.endsWith('.json')) return `controlPath ${JSON.stringify(p)} names a registry file`;
  if (p.includes('\0')) return 'controlPath contains a NUL byte';
  const bytes = Buffer.byteLength(p);
  if (bytes > MAX_SOCKET_PATH_BYTES) return `controlPath is ${bytes} bytes, more than a Unix socket path can hold (${MAX_SOCKET_PATH_BYTES})`;
  return null;
}

export function encodeEntry(entry: RegistryEntry): string {
  const { version, port, host, addresses, netns, pidns, container, pid, startTime, controlPath, ringCapacity, createdAt, group } = entry;
  return JSON.stringify({ version, port, host, addresses, netns, pidns, container, pid, startTime, controlPath, ringCapacity, createdAt, group }) + '\n';
}

const isNamespace = (s: unknown): s is string => typeof s === 'string' && /^[0-9]{0,20}$/.test(s);
const isName = (s: unknown): s is string => typeof s === 'string' && s.length <= MAX_NAME_LENGTH && !/[\0-\x1f]/.test(s);
const isAddresses = (a: unknown): a is string[] =>
  Array.isArray(a) && a.length <= MAX_ADDRESSES && a.every((x) => typeof x === 'string' && x.length <= 45 && net.isIP(x) !== 0);

/** Parses and checks the text of an entry for `port` in namespace `netns` (its file name's), read
 *  from registry directory `dir`. */
export function decodeEntry(text: string, port: number, netns: string, dir: string): DecodedEntry {
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
  if (o.port !== port) return invalid(`port ${o.port} does not match the file name (${entryFileName(port, netns)})`);
  if (!isHost(o.host)) return invalid('host is not a string of at most 255 printable characters');
  if (!isAddresses(o.addresses)) return invalid(`addresses is not a list of at most ${MAX_ADDRESSES} IP addresses`);
  if (!isNamespace(o.netns) || o.netns !== netns) return invalid(`netns ${JSON.stringify(o.netns)} does not match the file name`);
  if (!isNamespace(o.pidns)) return invalid('pidns is not a namespace id');
  if (!isName(o.container)) return invalid(`container is not a name of at most ${MAX_NAME_LENGTH} printable characters`);
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
      addresses: o.addresses,
      netns: o.netns,
      pidns: o.pidns,
      container: o.container,
      pid: o.pid,
      startTime: o.startTime,
      controlPath: o.controlPath as string,
      ringCapacity: o.ringCapacity as number,
      createdAt: o.createdAt as number,
      ...(o.group !== undefined ? { group: o.group as number } : {}),
    },
  };
}
