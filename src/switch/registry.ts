// The host registry: how a co-resident client finds the control socket of a server listening on a
// TCP port. A directory (registry-directory.ts: this user's alone by default; shared by containers
// on purpose) holding `port-<port>-<netns>.json` entries (format in registry-entry.ts) and the
// servers' control sockets. An entry is its server's in one network namespace: a client finds the
// server of its own namespace at a local address, or a server of another namespace at one of the
// addresses that server listens on there (containers of one pod or host, over a shared volume).
//
// Entries are published whole (written to a temporary file, then hard-linked into place, which
// also refuses to replace an entry that appeared meanwhile). An entry whose owner has died is stale:
// any reader removes it (liveness.ts says how it knows, across PID namespaces too). Removal moves
// the file aside first and checks it is still the one judged stale, so a fresh entry written in
// between is never lost.
//
// Everything is synchronous: the files are tiny, live on tmpfs, and connect() needs an answer
// before it chooses a transport.

import cluster from 'node:cluster';
import { threadId } from 'node:worker_threads';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { XwayError, XwayRangeError } from '../errors.js';
import { DEFAULT_CAPACITY } from '../platform/host/limits.js';
import { nativeAddon, hostUnavailableReason } from '../platform/host/native.js';
import { isValidCapacity, MAX_CAPACITY, MIN_CAPACITY } from '../ring/layout.js';
import {
  controlPathProblem, decodeEntry, encodeEntry, entryFileName, ENTRY_VERSION, isHost, isPid, isPort,
  MAX_ENTRY_BYTES, MAX_SOCKET_PATH_BYTES, memberFileName, parseEntryFile, parseMemberFile, type RegistryEntry,
} from './registry-entry.js';
import { RegistryError, errnoOf, euid, ioError, openDirectory, registryDirectory } from './registry-directory.js';
import { judgeOwner, ownStartTime, probeSocket, processStartTime, type Owner } from './liveness.js';
import { listenAddresses, ownNamespaces, plainAddress } from './namespace.js';
import { modes, sharingPolicy, trustedOwner } from './sharing.js';
import { isLocalHost } from './policy.js';
import { servesHost } from '../socket/identity.js';

export { MAX_ENTRY_BYTES, MAX_SOCKET_PATH_BYTES, type RegistryEntry } from './registry-entry.js';
export { RegistryError, type RegistryErrorReason, registryDirectory, ensureRegistryDirectory, existingRegistryDirectory } from './registry-directory.js';
export { parseProcStat, processStartTime, judgeOwner, ownIdentity, type Owner, type ProcStat } from './liveness.js';

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
  /** The entry file, `<dir>/port-<port>-<netns>.json`. */
  readonly entryPath: string;
  /** What was written. */
  readonly entry: RegistryEntry;
  /** Removes the entry if it is still this registration's. Idempotent; never throws. */
  close(): void;
}

/** Temporary and moved-aside files live for microseconds; older ones were left by a crash. */
const LEFTOVER_AGE_MS = 60_000;
const PUBLISH_ATTEMPTS = 8;

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
  | { state: 'text'; text: string; ident: Ident; uid: number }
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
    // Another user's file is not ours to trust, nor to remove.
    if (!trustedOwner(st.uid, st.gid)) return { state: 'unusable', why: `owned by uid ${st.uid}, which is not trusted (XWAY_ALLOW_UIDS / XWAY_ALLOW_GROUP)` };
    if ((st.mode & 0o002) !== 0) return { state: 'unusable', why: 'writable by anyone' };
    if (st.size > MAX_ENTRY_BYTES) return { state: 'garbage', why: `${st.size} bytes, more than ${MAX_ENTRY_BYTES}`, ident };
    const buf = Buffer.alloc(MAX_ENTRY_BYTES + 1);
    let length = 0;
    for (let n; length < buf.length && (n = fs.readSync(fd, buf, length, buf.length - length, null)) > 0;) length += n;
    if (length > MAX_ENTRY_BYTES) return { state: 'garbage', why: `more than ${MAX_ENTRY_BYTES} bytes`, ident };
    return { state: 'text', text: buf.toString('utf8', 0, length), ident, uid: st.uid };
  } catch (err) {
    return { state: 'unusable', why: `cannot read it (${errnoOf(err) ?? (err as Error).message})` };
  } finally {
    fs.closeSync(fd);
  }
}

function judgeEntry(dir: string, port: number, netns: string, name: string): Judgement {
  const read = readEntryFile(path.join(dir, name));
  if (read.state === 'garbage') return { state: 'stale', why: read.why, ident: read.ident };
  if (read.state !== 'text') return read;
  const decoded = decodeEntry(read.text, port, netns, dir);
  if (decoded.kind === 'invalid') return { state: 'stale', why: decoded.why, ident: read.ident, controlPath: decoded.controlPath };
  if (decoded.kind === 'newer') {
    // Only its owner can be judged, and only where its pid means something.
    const owner = judgeOwner(decoded.pid, decoded.startTime);
    return owner === 'dead' && netns === ownNamespaces().netns
      ? { state: 'stale', why: `its process ${decoded.pid} has exited`, ident: read.ident }
      : { state: 'unusable', why: `process ${decoded.pid} wrote it in a newer format (version ${decoded.version})` };
  }
  const entry = decoded.entry;
  const owner = ownerOf(entry);
  if (owner === 'dead') return { state: 'stale', why: `its server (pid ${entry.pid} in ${entry.container}) is gone`, ident: read.ident, controlPath: entry.controlPath };
  if (owner === 'unusable') return { state: 'unusable', why: `its server (pid ${entry.pid} in ${entry.container}) cannot be judged from here` };
  const socketUid = trustedSocket(entry.controlPath);
  if (socketUid === null) return { state: 'unusable', why: `its control socket ${entry.controlPath} is not owned by a trusted user, or others may write it` };
  // One server wrote both: a file planted beside another's socket (or the other way round) has
  // another owner. (That the owner is who answers on the socket is checked when connecting.)
  if (socketUid !== read.uid) return { state: 'unusable', why: `the entry is owned by uid ${read.uid} but its control socket by uid ${socketUid}` };
  return { state: 'live', entry, ident: read.ident };
}

/** Whether the server of `entry` runs. In our PID namespace: its pid and start time, and its
 *  control socket still there (a worker thread that ended took its socket with it). Elsewhere: its
 *  control socket accepts. */
function ownerOf(entry: RegistryEntry): Owner {
  if (entry.pidns === ownNamespaces().pidns && entry.pidns !== '') {
    const owner = judgeOwner(entry.pid, entry.startTime);
    if (owner !== 'alive') return owner;
    return socketExists(entry.controlPath) ? 'alive' : 'dead';
  }
  if (hostUnavailableReason() !== null) return 'unusable';
  const native = nativeAddon();
  return probeSocket(entry.controlPath, (p) => native.ctlConnect(p), (fd) => native.closeFd(fd));
}

/** The owner of a control socket we may connect to (else null): a socket, owned by a trusted user,
 *  writable by all only where the sharing policy needs it to be (a list of uids and no shared
 *  group: the server checks each peer's credentials instead). */
function trustedSocket(file: string): number | null {
  try {
    const st = fs.lstatSync(file);
    const policy = sharingPolicy();
    const openToAll = (st.mode & 0o002) !== 0;
    return st.isSocket() && trustedOwner(st.uid, st.gid) && (!openToAll || (policy.gid === null && policy.uids.size > 0)) ? st.uid : null;
  } catch {
    return null;
  }
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

/** Removes a control socket in the directory whose server is gone: nothing accepts on it. */
function removeDeadControlSocket(dir: string, controlPath: string): void {
  if (!CONTROL_SOCKET.test(path.basename(controlPath)) || path.dirname(controlPath) !== dir) return;
  let native;
  try { native = nativeAddon(); } catch { return; }
  if (probeSocket(controlPath, (p) => native.ctlConnect(p), (fd) => native.closeFd(fd)) !== 'dead') return;
  try {
    if (fs.lstatSync(controlPath).isSocket()) fs.unlinkSync(controlPath);
  } catch { /* gone already */ }
}

function removeStale(dir: string, name: string, judgement: { ident: Ident; controlPath?: string }): void {
  const removed = removeIfSame(dir, path.join(dir, name), judgement.ident);
  if (removed && judgement.controlPath) removeDeadControlSocket(dir, judgement.controlPath);
}

// ---------------------------------------------------------------- the API

function socketPath(name: string): string {
  const dir = openDirectory(true) as string;
  const p = path.join(dir, name);
  const bytes = Buffer.byteLength(p);
  if (bytes > MAX_SOCKET_PATH_BYTES) {
    throw new RegistryError('path-too-long', `the xway control socket path ${p} would be ${bytes} bytes, but a Unix socket path holds at most ${MAX_SOCKET_PATH_BYTES}; set XWAY_DIR to a shorter directory (for example /tmp/xway-${euid()})`);
  }
  return p;
}

/** A path for a control socket of this process in the registry directory (created and checked):
 *  `<dir>/ctl-<n>-<pid>-<startTime>.sock`. The start time keeps a later process with the same pid
 *  from colliding with a dead one's socket. Throws RegistryError('path-too-long') if it would not
 *  fit in a Unix socket address. */
export function controlPathFor(n: number): string {
  checkPort(n);
  return socketPath(`ctl-${n}-${process.pid}-${ownStartTime()}.sock`);
}

/** The control socket of this thread's link listener (one for every port the thread serves). */
export function threadControlPath(): string {
  return socketPath(`ctl-${threadId}-${process.pid}-${ownStartTime()}.sock`);
}

/** Makes a control socket just created by this process usable as the sharing policy says. */
export function shareControlSocket(controlPath: string): void {
  const policy = sharingPolicy();
  if (policy.gid !== null) fs.chownSync(controlPath, -1, policy.gid);
  fs.chmodSync(controlPath, modes(policy).socket);
}

/** Publishes the endpoint of a server listening on `port`. Throws RegistryError('address-in-use')
 *  if a live process (this one included) already registered the port in this network namespace;
 *  replaces a stale entry. */
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
  if (problem) throw new RegistryError('invalid-argument', `${problem}; make it with threadControlPath()`);
  let startTime: number | null;
  try {
    startTime = pid === process.pid ? ownStartTime() : processStartTime(pid);
  } catch (err) {
    throw new RegistryError('io', `cannot read the start time of process ${pid}: ${(err as Error).message}`, { cause: err });
  }
  if (startTime === null) throw new RegistryError('invalid-argument', `process ${pid} does not exist`);

  const group = options.group === null ? undefined : options.group ?? clusterGroup();
  if (group !== undefined && !isPid(group)) throw new XwayRangeError(`group must be a process id, got ${group}`);
  const ns = ownNamespaces();
  const entry: RegistryEntry = {
    version: ENTRY_VERSION, port, host, addresses: listenAddresses(host), netns: ns.netns, pidns: ns.pidns, container: ns.container.slice(0, 64),
    pid, startTime, controlPath, ringCapacity, createdAt: Date.now(), ...(group !== undefined ? { group } : {}),
  };
  const entryName = entryFileName(port, ns.netns);
  let entryPath = path.join(dir, entryName);
  const temp = path.join(dir, `.tmp-${process.pid}-${randomBytes(6).toString('hex')}`);
  let ident: Ident;
  try {
    ident = writeTemp(temp, encodeEntry(entry));
    for (let attempt = 1; !publish(temp, entryPath); attempt++) {
      const existing = judgeEntry(dir, port, ns.netns, entryName);
      if (existing.state === 'live' && group !== undefined && existing.entry.group === group && existing.entry.pid !== pid) {
        // Another worker of our cluster got here first: stand beside it as a member.
        entryPath = path.join(dir, memberFileName(port, ns.netns, pid, startTime));
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
      if (existing.state === 'stale') removeStale(dir, entryName, existing);
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
      // Best effort: an entry left behind is judged stale once its server is gone.
      try {
        const read = readEntryFile(entryPath);
        if (read.state !== 'text' || !sameFile(read.ident, ident)) return;
        const decoded = decodeEntry(read.text, port, ns.netns, dir);
        if (decoded.kind !== 'entry' || decoded.entry.pid !== pid || decoded.entry.startTime !== startTime) return;
        removeIfSame(dir, entryPath, read.ident);
      } catch { /* nothing to undo */ }
    },
  };
}

/** Writes a new file (owner-only, or as the sharing policy says) and returns its identity. */
function writeTemp(file: string, text: string): Ident {
  const policy = sharingPolicy();
  const mode = modes(policy).file;
  const fd = fs.openSync(file, 'wx', mode); // O_EXCL: never through an existing file or symlink
  try {
    if (policy.gid !== null) fs.fchownSync(fd, -1, policy.gid);
    fs.fchmodSync(fd, mode); // whatever the umask
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

/**
 * The live entry a connect to `host`:`port` reaches, or null. `host` is an IP address (a name
 * must be resolved first) or omitted (then only this namespace's entry, whatever it is bound to).
 * In this network namespace: the entry for the port, if its listener accepts connections to
 * `host`. Elsewhere — when `host` is not an address of ours — an entry of another namespace (a
 * container sharing the registry) listing `host` among the addresses it listens on. Stale and
 * invalid entries are removed on the way; one this process cannot judge or use is left alone.
 * Throws RegistryError only if the directory is unsafe or cannot be read.
 */
export function lookupEndpoint(port: number, host?: string, problems?: string[]): RegistryEntry | null {
  checkPort(port);
  const key = entryKey(port, host);
  const cached = recentlyLive(key);
  if (cached) return cached;
  const dir = openDirectory(false);
  if (dir === null) return null;
  const own = ownNamespaces().netns;
  const ownName = entryFileName(port, own);
  const found = (name: string, netns: string): RegistryEntry | null => {
    const judgement = judgeEntry(dir, port, netns, name);
    if (judgement.state === 'live') {
      const group = judgement.entry.group !== undefined ? [judgement.entry, ...liveMembers(dir, port, netns, judgement.entry.group)] : null;
      recent.set(key, { dir: registryDirectory(), file: path.join(dir, name), entry: judgement.entry, group, ident: judgement.ident, at: Date.now() });
      return pick(key, group) ?? judgement.entry;
    }
    if (judgement.state === 'stale') removeStale(dir, name, judgement);
    if (judgement.state === 'unusable') problems?.push(`the entry ${name} is not usable: ${judgement.why}`);
    // The first worker of a cluster is gone, but others may still serve the port.
    if (judgement.state === 'missing' || judgement.state === 'stale') return pick(key, liveMembers(dir, port, netns, null));
    return null;
  };
  recent.delete(key);
  const mine = found(ownName, own);
  if (mine && (host === undefined || servesHost(mine.host, host))) return mine;
  if (host === undefined || isLocalHost(host) || net.isIP(host) === 0) return null;
  const target = plainAddress(host);
  for (const { name, netns } of listing(dir, port)) {
    if (netns === own) continue;
    const theirs = found(name, netns);
    if (theirs && theirs.addresses.some((a) => plainAddress(a) === target)) return theirs;
    recent.delete(key);
  }
  return null;
}

/**
 * The entry a lookup of `port`/`host` found live in the last LIVE_CACHE_MS, without checking it
 * again: for a caller that can tell exactly whether its server still listens some other way (a
 * link's listener table, written by the server itself), instead of an lstat and a kill(pid, 0).
 */
export function recentEntry(port: number, host: string | undefined, stillListens: (entry: RegistryEntry, port: number) => boolean): RegistryEntry | null {
  const key = entryKey(port, host);
  const hit = freshHit(key);
  if (!hit) return null;
  // The cluster member whose turn it is; its turn is spent only if it is taken, so a member our
  // link cannot vouch for yet is the one the full lookup picks next (connections stay spread).
  const entry = pick(key, hit.group, false) ?? hit.entry;
  if (!stillListens(entry, port)) return null;
  pick(key, hit.group);
  return entry;
}

/** The cache key of a lookup; the last one is kept, since a burst of connects asks for the same. */
function entryKey(port: number, host: string | undefined): string {
  if (port !== lastKey.port || host !== lastKey.host) lastKey = { port, host, key: `${port}|${host ?? ''}` };
  return lastKey.key;
}
let lastKey: { port: number; host: string | undefined; key: string } = { port: -1, host: undefined, key: '' };

/** Entries found live in the last LIVE_CACHE_MS, so a burst of connects costs an lstat (and a
 *  kill(pid, 0)) each instead of a directory check, a read and a look at /proc or a probe. */
const LIVE_CACHE_MS = 1000;
const recent = new Map<string, { dir: string; file: string; entry: RegistryEntry; group: RegistryEntry[] | null; ident: Ident; at: number }>();

/** Clients spread their connections over a cluster's entries in turn. */
const turns = new Map<string, number>();

function pick(key: string, group: RegistryEntry[] | null, spend = true): RegistryEntry | null {
  if (!group || group.length === 0) return null;
  const turn = turns.get(key) ?? Math.floor(Math.random() * group.length); // clients start apart
  turns.set(key, spend ? turn + 1 : turn);
  return group[turn % group.length];
}

/** The live member entries of `port` in namespace `netns` and `group` (any group if null; stale
 *  ones are removed on the way). */
function liveMembers(dir: string, port: number, netns: string, group: number | null): RegistryEntry[] {
  const members: RegistryEntry[] = [];
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return members;
  }
  for (const name of names) {
    const m = parseMemberFile(name);
    if (m?.port !== port || m.netns !== netns) continue;
    const judgement = judgeEntry(dir, port, netns, name);
    if (judgement.state === 'live' && (group === null || judgement.entry.group === group)) members.push(judgement.entry);
    else if (judgement.state === 'stale') removeStale(dir, name, judgement);
  }
  return members.sort((a, b) => a.pid - b.pid);
}

/** The cache's entry for `key` if it was judged live under LIVE_CACHE_MS ago, in the current
 *  registry directory. */
function freshHit(key: string) {
  const hit = recent.get(key);
  return hit && Date.now() - hit.at <= LIVE_CACHE_MS && hit.dir === registryDirectory() ? hit : null;
}

function recentlyLive(key: string): RegistryEntry | null {
  const hit = freshHit(key);
  if (!hit) return null;
  try {
    // The owner was judged under a second ago: the entry file still being the same file (and, in
    // our PID namespace, kill(pid, 0)) is enough.
    if (sameFile(identOf(fs.lstatSync(hit.file)), hit.ident)) {
      if (hit.entry.pidns === ownNamespaces().pidns) process.kill(hit.entry.pid, 0);
      return pick(key, hit.group) ?? hit.entry;
    }
  } catch { /* gone */ }
  recent.delete(key);
  return null;
}

/** The registry's entry files for `port`, by namespace. Read afresh each time: a lookup that gets
 *  here missed the cache of live entries, and a listing kept longer would miss a server that just
 *  registered. */
function listing(dir: string, port: number): { name: string; netns: string }[] {
  let list: string[] = [];
  try { list = fs.readdirSync(dir); } catch { /* none */ }
  const out: { name: string; netns: string }[] = [];
  for (const name of list) {
    const e = parseEntryFile(name);
    if (e?.port === port) out.push({ name, netns: e.netns });
  }
  return out;
}

/** Every live entry, by port (for `xway stat`), of every namespace sharing the registry. Removes
 *  stale entries, control sockets of dead servers and files left by a crash during publication. */
export function listEndpoints(): RegistryEntry[] {
  const dir = openDirectory(false);
  if (dir === null) return [];
  let all: string[];
  try {
    all = fs.readdirSync(dir);
  } catch (err) {
    throw ioError(`list the xway registry directory ${dir}`, err);
  }
  const live: RegistryEntry[] = [];
  for (const name of all) {
    const key = parseEntryFile(name) ?? parseMemberFile(name);
    if (key !== null) {
      const judgement = judgeEntry(dir, key.port, key.netns, name);
      if (judgement.state === 'live') live.push(judgement.entry);
      else if (judgement.state === 'stale') removeStale(dir, name, judgement);
    } else if (CONTROL_SOCKET.test(name)) {
      removeDeadControlSocket(dir, path.join(dir, name));
    } else if (/^\.(tmp|gone)-/.test(name)) {
      removeLeftover(path.join(dir, name));
    }
  }
  return live.sort((a, b) => a.port - b.port || a.netns.localeCompare(b.netns) || a.pid - b.pid);
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
