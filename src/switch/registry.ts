// The host registry: how a co-resident client finds the control socket of a server listening on a
// TCP port. One directory per user, owner-only, holding `port-<port>.json` entries (format in
// registry-entry.ts) and the servers' control sockets.
//
// Entries are published whole (written to a temporary file, then hard-linked into place, which
// also refuses to replace an entry that appeared meanwhile). An entry whose owner has died is stale:
// any reader removes it. An owner is identified by pid *and* start time, so a recycled pid does not
// keep a dead server's entry alive. Removal moves the file aside first and checks it is still the
// one judged stale, so a fresh entry written in between is never lost.
//
// Everything is synchronous: the files are tiny, live on tmpfs, and connect() needs an answer
// before it chooses a transport.

import cluster from 'node:cluster';
import { threadId } from 'node:worker_threads';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { XwayError, XwayRangeError } from '../errors.js';
import { DEFAULT_CAPACITY } from '../platform/host/limits.js';
import { isValidCapacity, MAX_CAPACITY, MIN_CAPACITY } from '../ring/layout.js';
import {
  controlPathProblem, decodeEntry, encodeEntry, entryFileName, ENTRY_VERSION, isHost, isPid, isPort,
  MAX_ENTRY_BYTES, MAX_SOCKET_PATH_BYTES, memberFileName, portOfEntryFile, portOfMemberFile, type RegistryEntry,
} from './registry-entry.js';

export { MAX_ENTRY_BYTES, MAX_SOCKET_PATH_BYTES, type RegistryEntry } from './registry-entry.js';

/** What went wrong, for callers that react differently (the switch falls back to TCP on any). */
export type RegistryErrorReason =
  /** The directory is a symlink, not a directory, owned by someone else or open to others. */
  | 'unsafe-directory'
  /** A live process already registered the port. */
  | 'address-in-use'
  /** A control socket path in the directory would not fit in sun_path. */
  | 'path-too-long'
  | 'invalid-argument'
  /** A file system call failed (the cause is attached). */
  | 'io';

/** A registry problem; `message` says what is wrong and how to fix it. */
export class RegistryError extends XwayError {
  readonly reason: RegistryErrorReason;
  constructor(reason: RegistryErrorReason, message: string, options?: { cause?: unknown }) {
    super('ERR_XWAY_REGISTRY', message);
    this.reason = reason;
    if (options?.cause !== undefined) this.cause = options.cause;
  }
}

/** What `registerEndpoint` needs. */
export interface RegisterOptions {
  /** TCP port the server listens on (1–65535). */
  port: number;
  /** Host the server listens on, as given to `listen`. */
  host: string;
  /** The server's control socket, a path from `controlPathFor(port)` (must be in the registry directory). */
  controlPath: string;
  /** Owner of the endpoint. Default: this process. */
  pid?: number;
  /** Ring capacity clients should ask for. Default 256 KiB. */
  ringCapacity?: number;
  /** The cluster this server is a worker of (the primary's pid), if any: a live entry of the
   *  same group does not make the port 'in use' — this server is then registered beside it as a
   *  member, and clients spread over the group. Default: the parent's pid in a cluster worker. */
  group?: number | null;
}

/** The group a cluster worker registers with: its primary's pid. */
function clusterGroup(): number | undefined {
  // node:cluster, not NODE_UNIQUE_ID: Node removes that variable once the worker is set up.
  return cluster.isWorker && isPid(process.ppid) ? process.ppid : undefined;
}

/** A published entry; `close()` withdraws it. */
export interface Registration {
  /** The entry file, `<dir>/port-<port>.json`. */
  readonly entryPath: string;
  /** What was written. */
  readonly entry: RegistryEntry;
  /** Removes the entry if it is still this registration's. Idempotent; never throws. */
  close(): void;
}

const DIR_MODE = 0o700;
const FILE_MODE = 0o600;
/** Temporary and moved-aside files live for microseconds; older ones were left by a crash. */
const LEFTOVER_AGE_MS = 60_000;
const PUBLISH_ATTEMPTS = 8;

// ---------------------------------------------------------------- the directory

/** The registry directory this process would use now: `XWAY_DIR`, else `$XDG_RUNTIME_DIR/xway`,
 *  else `<tmpdir>/xway-<uid>`. Read from the environment at each call; not created or checked. */
export function registryDirectory(): string {
  const { XWAY_DIR, XDG_RUNTIME_DIR } = process.env;
  if (XWAY_DIR) return path.resolve(XWAY_DIR);
  // The XDG spec says to ignore a relative XDG_RUNTIME_DIR.
  if (XDG_RUNTIME_DIR && path.isAbsolute(XDG_RUNTIME_DIR) && isDirectory(XDG_RUNTIME_DIR)) {
    return path.join(path.resolve(XDG_RUNTIME_DIR), 'xway');
  }
  return path.join(os.tmpdir(), `xway-${euid()}`);
}

function isDirectory(p: string): boolean {
  try {
    return fs.statSync(p).isDirectory();
  } catch {
    return false;
  }
}

function euid(): number {
  if (typeof process.geteuid !== 'function') {
    throw new RegistryError('unsafe-directory', 'the xway registry needs a POSIX system (no process.geteuid here)');
  }
  return process.geteuid();
}

/** Checks the registry directory (creating it if `create`) and returns its real path, or null if
 *  it does not exist and `create` is false. */
function openDirectory(create: boolean): string | null {
  const dir = registryDirectory();
  let created = false;
  if (create) {
    try {
      fs.mkdirSync(dir, { mode: DIR_MODE });
      created = true;
    } catch (err) {
      if (errnoOf(err) === 'ENOENT') {
        throw new RegistryError('io', `cannot create the xway registry directory ${dir}: its parent directory does not exist; create the parent or set XWAY_DIR to a directory you own`, { cause: err });
      }
      if (errnoOf(err) !== 'EEXIST') throw ioError(`create the xway registry directory ${dir}`, err);
    }
  }
  let st: fs.Stats;
  try {
    st = fs.lstatSync(dir);
  } catch (err) {
    if (errnoOf(err) === 'ENOENT' && !create) return null;
    throw ioError(`examine the xway registry directory ${dir}`, err);
  }
  // Ours to fix: the umask may have taken bits from the mode we asked for.
  if (created && st.isDirectory() && (st.mode & 0o777) !== DIR_MODE) {
    fs.chmodSync(dir, DIR_MODE);
    st = fs.lstatSync(dir);
  }
  checkDirectory(dir, st);
  return fs.realpathSync(dir); // the directory itself is no symlink; this resolves its parents
}

function checkDirectory(dir: string, st: fs.Stats): void {
  const fix = 'or set XWAY_DIR to a directory you own with mode 0700';
  if (st.isSymbolicLink()) {
    let target = '?';
    try { target = fs.readlinkSync(dir); } catch { /* only for the message */ }
    throw new RegistryError('unsafe-directory', `the xway registry directory ${dir} is a symbolic link (to ${target}); xway only uses a real directory. Remove the link, ${fix}`);
  }
  if (!st.isDirectory()) {
    throw new RegistryError('unsafe-directory', `the xway registry directory ${dir} exists but is not a directory; remove it, ${fix}`);
  }
  const uid = euid();
  if (st.uid !== uid) {
    throw new RegistryError('unsafe-directory', `the xway registry directory ${dir} is owned by uid ${st.uid}, not by this process's user (uid ${uid}), who could then read or replace its entries; remove it, ${fix}`);
  }
  const mode = (st.mode & 0o777).toString(8).padStart(4, '0');
  if ((st.mode & 0o077) !== 0) {
    throw new RegistryError('unsafe-directory', `the xway registry directory ${dir} has mode ${mode}, which lets other users in; run \`chmod 700 ${dir}\`, ${fix}`);
  }
  if ((st.mode & 0o700) !== 0o700) {
    throw new RegistryError('unsafe-directory', `the xway registry directory ${dir} has mode ${mode}; its owner needs read, write and search permission: run \`chmod 700 ${dir}\`, ${fix}`);
  }
}

// ---------------------------------------------------------------- process identity

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

function ownStartTime(): number {
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

/** The registry directory, created if missing and checked (owner-only, no symlink); for other
 *  per-process files kept beside the entries (the channel tables `xway stat` reads). */
export function ensureRegistryDirectory(): string {
  return openDirectory(true) as string;
}

/** The registry directory if it exists (checked), else null. */
export function existingRegistryDirectory(): string | null {
  return openDirectory(false);
}

/** This process's identity as the registry records it: pid and start time. */
export function ownIdentity(): { pid: number; startTime: number } {
  return { pid: process.pid, startTime: ownStartTime() };
}

// ---------------------------------------------------------------- reading and removing entries

/** Identity of a file as read, so removal can check it is still the same file. */
interface Ident { dev: number; ino: number; size: number; mtimeMs: number }

const identOf = (st: fs.Stats): Ident => ({ dev: st.dev, ino: st.ino, size: st.size, mtimeMs: st.mtimeMs });
const sameFile = (a: Ident, b: Ident) => a.dev === b.dev && a.ino === b.ino && a.size === b.size && a.mtimeMs === b.mtimeMs;

type Judgement =
  | { state: 'missing' }
  | { state: 'live'; entry: RegistryEntry; ident: Ident }
  /** Leave it alone: a live owner we cannot use, or a file we cannot read. */
  | { state: 'unusable'; why: string }
  /** Dead owner or garbage: remove it (and the dead owner's control socket). */
  | { state: 'stale'; why: string; ident: Ident; controlPath?: string };

type FileRead =
  | { state: 'missing' }
  | { state: 'text'; text: string; ident: Ident }
  | { state: 'garbage'; why: string; ident: Ident }
  | { state: 'unusable'; why: string };

const { O_RDONLY, O_NOFOLLOW, O_NONBLOCK } = fs.constants;

function readEntryFile(file: string): FileRead {
  let fd: number;
  try {
    // No following a symlink out of the directory; no blocking on a FIFO.
    fd = fs.openSync(file, O_RDONLY | O_NOFOLLOW | O_NONBLOCK);
  } catch (err) {
    const code = errnoOf(err);
    if (code === 'ENOENT') return { state: 'missing' };
    // ELOOP: a symlink; ENXIO: a socket. Neither is an entry.
    if (code === 'ELOOP' || code === 'ENXIO') {
      try {
        return { state: 'garbage', why: code === 'ELOOP' ? 'a symbolic link' : 'a socket', ident: identOf(fs.lstatSync(file)) };
      } catch {
        return { state: 'missing' };
      }
    }
    return { state: 'unusable', why: `cannot open it (${code ?? (err as Error).message})` };
  }
  try {
    const st = fs.fstatSync(fd);
    const ident = identOf(st);
    if (st.isDirectory()) return { state: 'unusable', why: 'it is a directory' };
    if (!st.isFile()) return { state: 'garbage', why: 'not a regular file', ident };
    if (st.uid !== euid()) return { state: 'garbage', why: `owned by uid ${st.uid}`, ident };
    if (st.size > MAX_ENTRY_BYTES) return { state: 'garbage', why: `${st.size} bytes, more than ${MAX_ENTRY_BYTES}`, ident };
    const buf = Buffer.alloc(MAX_ENTRY_BYTES + 1);
    let length = 0;
    for (let n; length < buf.length && (n = fs.readSync(fd, buf, length, buf.length - length, null)) > 0;) length += n;
    if (length > MAX_ENTRY_BYTES) return { state: 'garbage', why: `more than ${MAX_ENTRY_BYTES} bytes`, ident };
    return { state: 'text', text: buf.toString('utf8', 0, length), ident };
  } catch (err) {
    return { state: 'unusable', why: `cannot read it (${errnoOf(err) ?? (err as Error).message})` };
  } finally {
    fs.closeSync(fd);
  }
}

function judgeEntry(dir: string, port: number, name = entryFileName(port)): Judgement {
  const read = readEntryFile(path.join(dir, name));
  if (read.state === 'garbage') return { state: 'stale', why: read.why, ident: read.ident };
  if (read.state !== 'text') return read;
  const decoded = decodeEntry(read.text, port, dir);
  if (decoded.kind === 'invalid') return { state: 'stale', why: decoded.why, ident: read.ident, controlPath: decoded.controlPath };
  const { pid, startTime } = decoded.kind === 'entry' ? decoded.entry : decoded;
  const owner = judgeOwner(pid, startTime);
  if (owner === 'dead') {
    const controlPath = decoded.kind === 'entry' ? decoded.entry.controlPath : undefined;
    return { state: 'stale', why: `its process ${pid} has exited`, ident: read.ident, controlPath };
  }
  if (decoded.kind === 'newer') return { state: 'unusable', why: `process ${pid} wrote it in a newer format (version ${decoded.version})` };
  if (owner === 'unusable') return { state: 'unusable', why: `process ${pid} runs but is not this user's, or /proc cannot tell` };
  // A live process whose serving thread ended (a worker that exited, or was terminated): its
  // control socket went with it.
  if (!socketExists(decoded.entry.controlPath)) return { state: 'stale', why: `its control socket ${decoded.entry.controlPath} is gone`, ident: read.ident };
  return { state: 'live', entry: decoded.entry, ident: read.ident };
}

function socketExists(file: string): boolean {
  try {
    return fs.lstatSync(file).isSocket();
  } catch {
    return false;
  }
}

/** Removes `file` if it is still the file judged (`ident`). True if it was removed. */
function removeIfSame(dir: string, file: string, ident: Ident): boolean {
  const aside = path.join(dir, `.gone-${process.pid}-${randomBytes(6).toString('hex')}`);
  try {
    fs.renameSync(file, aside);
  } catch {
    return false; // gone already, or not ours to move
  }
  try {
    if (sameFile(identOf(fs.lstatSync(aside)), ident)) {
      fs.unlinkSync(aside);
      return true;
    }
    // Replaced since we judged it: put the newcomer back, unless yet another took its place.
    try { fs.linkSync(aside, file); } catch { /* a newer entry stands there */ }
    fs.unlinkSync(aside);
  } catch { /* a leftover; listEndpoints sweeps it */ }
  return false;
}

const CONTROL_SOCKET = /^ctl-[0-9]+-([0-9]+)-([0-9]+)\.sock$/;

/** Removes a control socket in the directory whose owner (named in the file name) has died. */
function removeDeadControlSocket(dir: string, controlPath: string): void {
  const m = CONTROL_SOCKET.exec(path.basename(controlPath));
  if (!m || path.dirname(controlPath) !== dir) return;
  if (judgeOwner(Number(m[1]), Number(m[2])) !== 'dead') return;
  try {
    if (fs.lstatSync(controlPath).isSocket()) fs.unlinkSync(controlPath);
  } catch { /* gone already */ }
}

function removeStale(dir: string, port: number, judgement: { ident: Ident; controlPath?: string }, name = entryFileName(port)): void {
  const removed = removeIfSame(dir, path.join(dir, name), judgement.ident);
  if (removed && judgement.controlPath) removeDeadControlSocket(dir, judgement.controlPath);
}

// ---------------------------------------------------------------- the API

/** The path for this process's control socket for `port`, in the registry directory (created and
 *  checked): `<dir>/ctl-<port>-<pid>-<startTime>.sock`. The start time keeps a later process with
 *  the same pid from colliding with a dead one's socket. Throws RegistryError('path-too-long') if
 *  it would not fit in a Unix socket address. */
export function controlPathFor(port: number): string {
  checkPort(port);
  const dir = openDirectory(true) as string;
  const p = path.join(dir, `ctl-${port}-${process.pid}-${ownStartTime()}.sock`);
  const bytes = Buffer.byteLength(p);
  if (bytes > MAX_SOCKET_PATH_BYTES) {
    throw new RegistryError('path-too-long', `the xway control socket path ${p} would be ${bytes} bytes, but a Unix socket path holds at most ${MAX_SOCKET_PATH_BYTES}; set XWAY_DIR to a shorter directory (for example /tmp/xway-${euid()})`);
  }
  return p;
}

/** The control socket of this thread's link listener (one for every port the thread serves). */
export function threadControlPath(): string {
  const dir = openDirectory(true) as string;
  const p = path.join(dir, `ctl-${threadId}-${process.pid}-${ownStartTime()}.sock`);
  const bytes = Buffer.byteLength(p);
  if (bytes > MAX_SOCKET_PATH_BYTES) {
    throw new RegistryError('path-too-long', `the xway control socket path ${p} would be ${bytes} bytes, but a Unix socket path holds at most ${MAX_SOCKET_PATH_BYTES}; set XWAY_DIR to a shorter directory (for example /tmp/xway-${euid()})`);
  }
  return p;
}

/** Publishes the endpoint of a server listening on `port`. Throws RegistryError('address-in-use')
 *  if a live process (this one included) already registered the port; replaces a stale entry. */
export function registerEndpoint(options: RegisterOptions): Registration {
  const { port, host, controlPath } = options;
  const pid = options.pid ?? process.pid;
  const ringCapacity = options.ringCapacity ?? DEFAULT_CAPACITY;
  checkPort(port);
  if (!isPid(pid)) throw new XwayRangeError(`pid must be a process id, got ${pid}`);
  if (!isValidCapacity(ringCapacity)) {
    throw new XwayRangeError(`ringCapacity must be a power of two from ${MIN_CAPACITY} to ${MAX_CAPACITY}, got ${ringCapacity}`);
  }
  if (!isHost(host)) throw new RegistryError('invalid-argument', 'host must be a string of at most 255 printable characters');
  const dir = openDirectory(true) as string;
  const problem = controlPathProblem(controlPath, dir);
  if (problem) throw new RegistryError('invalid-argument', `${problem}; make it with controlPathFor(${port})`);
  let startTime: number | null;
  try {
    startTime = pid === process.pid ? ownStartTime() : processStartTime(pid);
  } catch (err) {
    throw new RegistryError('io', `cannot read the start time of process ${pid}: ${(err as Error).message}`, { cause: err });
  }
  if (startTime === null) throw new RegistryError('invalid-argument', `process ${pid} does not exist`);

  const group = options.group === null ? undefined : options.group ?? clusterGroup();
  if (group !== undefined && !isPid(group)) throw new XwayRangeError(`group must be a process id, got ${group}`);
  const entry: RegistryEntry = {
    version: ENTRY_VERSION, port, host, pid, startTime, controlPath, ringCapacity, createdAt: Date.now(), ...(group !== undefined ? { group } : {}),
  };
  let entryPath = path.join(dir, entryFileName(port));
  const temp = path.join(dir, `.tmp-${process.pid}-${randomBytes(6).toString('hex')}`);
  let ident: Ident;
  try {
    ident = writeTemp(temp, encodeEntry(entry));
    for (let attempt = 1; !publish(temp, entryPath); attempt++) {
      const existing = judgeEntry(dir, port);
      if (existing.state === 'live' && group !== undefined && existing.entry.group === group && existing.entry.pid !== pid) {
        // Another worker of our cluster got here first: stand beside it as a member.
        entryPath = path.join(dir, memberFileName(port, pid, startTime));
        if (publish(temp, entryPath)) break;
        throw new RegistryError('address-in-use', `EADDRINUSE: port ${port} already has this process's member entry ${entryPath}`);
      }
      if (existing.state === 'live') {
        const who = existing.entry.pid === process.pid ? 'this process' : `process ${existing.entry.pid}`;
        throw new RegistryError('address-in-use', `EADDRINUSE: port ${port} is already registered in ${entryPath} by ${who} (control socket ${existing.entry.controlPath}); close that server first or listen on another port`);
      }
      if (existing.state === 'unusable') {
        throw new RegistryError('address-in-use', `EADDRINUSE: port ${port} has an entry in ${entryPath} that xway cannot replace: ${existing.why}; remove the file if no server uses the port`);
      }
      if (existing.state === 'stale') removeStale(dir, port, existing);
      if (attempt === PUBLISH_ATTEMPTS) throw new RegistryError('io', `the entry ${entryPath} kept changing while being published; try again`);
    }
  } catch (err) {
    throw err instanceof XwayError ? err : ioError(`publish ${entryPath}`, err);
  } finally {
    try { fs.unlinkSync(temp); } catch { /* renamed into place, or never made */ }
  }

  let closed = false;
  return {
    entryPath,
    entry,
    close() {
      if (closed) return;
      closed = true;
      // Best effort: an entry left behind is judged stale once its process has exited.
      try {
        const read = readEntryFile(entryPath);
        if (read.state !== 'text' || !sameFile(read.ident, ident)) return;
        const decoded = decodeEntry(read.text, port, dir);
        if (decoded.kind !== 'entry' || decoded.entry.pid !== pid || decoded.entry.startTime !== startTime) return;
        removeIfSame(dir, entryPath, read.ident);
      } catch { /* nothing to undo */ }
    },
  };
}

/** Writes a new owner-only file and returns its identity. */
function writeTemp(file: string, text: string): Ident {
  const fd = fs.openSync(file, 'wx', FILE_MODE); // O_EXCL: never through an existing file or symlink
  try {
    fs.fchmodSync(fd, FILE_MODE); // whatever the umask
    fs.writeFileSync(fd, text);
    return identOf(fs.fstatSync(fd));
  } finally {
    fs.closeSync(fd);
  }
}

/** Puts the temporary file in place unless an entry exists. False if one does. */
function publish(temp: string, entryPath: string): boolean {
  try {
    fs.linkSync(temp, entryPath); // atomic, and fails with EEXIST instead of replacing
    return true;
  } catch (err) {
    const code = errnoOf(err);
    if (code === 'EEXIST') return false;
    if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP' && code !== 'ENOSYS') throw err;
  }
  // A file system without hard links: rename is atomic too, but may replace an entry that
  // appears between the check and the rename.
  if (fs.existsSync(entryPath)) return false;
  fs.renameSync(temp, entryPath);
  return true;
}

/** The live entry for `port`, or null. Stale and invalid entries are removed on the way; an entry
 *  this process cannot judge or use is left alone. Throws RegistryError only if the directory is
 *  unsafe or cannot be read; a missing directory means no entries. */
export function lookupEndpoint(port: number): RegistryEntry | null {
  checkPort(port);
  const cached = recentlyLive(port);
  if (cached) return cached;
  const dir = openDirectory(false);
  if (dir === null) return null;
  const judgement = judgeEntry(dir, port);
  if (judgement.state === 'live') {
    const group = judgement.entry.group !== undefined ? [judgement.entry, ...liveMembers(dir, port, judgement.entry.group)] : null;
    recent.set(port, { dir: registryDirectory(), file: path.join(dir, entryFileName(port)), entry: judgement.entry, group, ident: judgement.ident, at: Date.now() });
    return pick(port, group) ?? judgement.entry;
  }
  recent.delete(port);
  if (judgement.state === 'stale') removeStale(dir, port, judgement);
  // The first worker of a cluster is gone, but others may still serve the port.
  if (judgement.state === 'missing' || judgement.state === 'stale') return pick(port, liveMembers(dir, port, null));
  return null;
}

/** Entries found live in the last LIVE_CACHE_MS, so a burst of connects costs an lstat and a
 *  kill(pid, 0) each instead of a directory check, a read and a look at /proc. */
const LIVE_CACHE_MS = 1000;
const recent = new Map<number, { dir: string; file: string; entry: RegistryEntry; group: RegistryEntry[] | null; ident: Ident; at: number }>();

/** Clients spread their connections over a cluster's entries in turn. */
const turns = new Map<number, number>();

function pick(port: number, group: RegistryEntry[] | null): RegistryEntry | null {
  if (!group || group.length === 0) return null;
  const turn = turns.get(port) ?? Math.floor(Math.random() * group.length); // clients start apart
  turns.set(port, turn + 1);
  return group[turn % group.length];
}

/** The live member entries of `port` in `group` (any group if null; stale ones are removed on
 *  the way). */
function liveMembers(dir: string, port: number, group: number | null): RegistryEntry[] {
  const members: RegistryEntry[] = [];
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return members;
  }
  for (const name of names) {
    if (portOfMemberFile(name) !== port) continue;
    const judgement = judgeEntry(dir, port, name);
    if (judgement.state === 'live' && (group === null || judgement.entry.group === group)) members.push(judgement.entry);
    else if (judgement.state === 'stale') removeStale(dir, port, judgement, name);
  }
  return members.sort((a, b) => a.pid - b.pid);
}

function recentlyLive(port: number): RegistryEntry | null {
  const hit = recent.get(port);
  if (!hit || Date.now() - hit.at > LIVE_CACHE_MS || hit.dir !== registryDirectory()) return null;
  try {
    // kill(pid, 0) alone: the start time was checked under a second ago, too soon for the pid to
    // have been recycled.
    if (sameFile(identOf(fs.lstatSync(hit.file)), hit.ident)) {
      process.kill(hit.entry.pid, 0);
      return pick(port, hit.group) ?? hit.entry;
    }
  } catch { /* gone */ }
  recent.delete(port);
  return null;
}

/** Every live entry, by port (for `xway stat`). Removes stale entries, control sockets of dead
 *  processes and files left by a crash during publication. */
export function listEndpoints(): RegistryEntry[] {
  const dir = openDirectory(false);
  if (dir === null) return [];
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch (err) {
    throw ioError(`list the xway registry directory ${dir}`, err);
  }
  const live: RegistryEntry[] = [];
  for (const name of names) {
    const port = portOfEntryFile(name) ?? portOfMemberFile(name);
    if (port !== null) {
      const judgement = judgeEntry(dir, port, name);
      if (judgement.state === 'live') live.push(judgement.entry);
      else if (judgement.state === 'stale') removeStale(dir, port, judgement, name);
    } else if (CONTROL_SOCKET.test(name)) {
      removeDeadControlSocket(dir, path.join(dir, name));
    } else if (/^\.(tmp|gone)-/.test(name)) {
      removeLeftover(path.join(dir, name));
    }
  }
  return live.sort((a, b) => a.port - b.port || a.pid - b.pid);
}

function removeLeftover(file: string): void {
  try {
    const st = fs.lstatSync(file);
    if (!st.isDirectory() && Date.now() - st.mtimeMs > LEFTOVER_AGE_MS) fs.unlinkSync(file);
  } catch { /* gone already */ }
}

// ---------------------------------------------------------------- helpers

function checkPort(port: number): void {
  if (!isPort(port)) throw new XwayRangeError(`port must be an integer from 1 to 65535, got ${port}`);
}

function errnoOf(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | null)?.code;
}

function ioError(what: string, err: unknown): RegistryError {
  return new RegistryError('io', `cannot ${what}: ${(err as Error).message}`, { cause: err });
}
