// The registry directory: where it is, and whether it is safe to use. By default it is this user's
// alone (mode 0700, owned by us): nobody else can read our endpoints or plant one. Shared on
// purpose (containers, see sharing.ts), it may belong to root or an allowed user and be writable
// by the allowed group, and each file in it is then judged by its owner.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { XwayError } from '../errors.js';
import { isShared, modes, sharingPolicy, type SharingPolicy } from './sharing.js';

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

/** The registry directory this process would use now: `XWAY_DIR`, else `$XDG_RUNTIME_DIR/xway`,
 *  else `<tmpdir>/xway-<uid>`. Not created or checked. The environment is read at each call, in
 *  that order of precedence and only as far as it decides (each read of process.env makes a new
 *  string); what it gives is remembered for a second while those variables stay the same, since
 *  every connect of a burst asks (os.tmpdir() and the stat of XDG_RUNTIME_DIR cost ≈ 2–4 µs). */
export function registryDirectory(): string {
  const env = process.env;
  const now = Date.now();
  const r = remembered;
  const fresh = r !== null && now < r.until;
  const xwayDir = env.XWAY_DIR;
  if (xwayDir) {
    if (path.isAbsolute(xwayDir)) {
      if (fresh && r.xwayDir === xwayDir) return r.dir;
      return remember({ xwayDir, dir: path.resolve(xwayDir), until: now + REMEMBER_MS });
    }
    const cwd = process.cwd();
    if (fresh && r.xwayDir === xwayDir && r.cwd === cwd) return r.dir;
    return remember({ xwayDir, cwd, dir: path.resolve(xwayDir), until: now + REMEMBER_MS });
  }
  const xdg = env.XDG_RUNTIME_DIR;
  const { TMPDIR, TMP, TEMP } = env; // os.tmpdir()'s
  if (fresh && r.xwayDir === undefined && r.xdg === xdg && r.tmp === TMPDIR && r.tmp2 === TMP && r.tmp3 === TEMP) return r.dir;
  return remember({ xdg, tmp: TMPDIR, tmp2: TMP, tmp3: TEMP, dir: directoryFor(xdg), until: now + REMEMBER_MS });
}

const REMEMBER_MS = 1000;
interface Remembered {
  xwayDir?: string;
  cwd?: string;
  xdg?: string;
  tmp?: string;
  tmp2?: string;
  tmp3?: string;
  dir: string;
  until: number;
}
let remembered: Remembered | null = null;

function remember(r: Remembered): string {
  remembered = r;
  return r.dir;
}

function directoryFor(xdg: string | undefined): string {
  // The XDG spec says to ignore a relative XDG_RUNTIME_DIR.
  if (xdg && path.isAbsolute(xdg) && isDirectory(xdg)) return path.join(path.resolve(xdg), 'xway');
  return path.join(os.tmpdir(), `xway-${euid()}`);
}

function isDirectory(p: string): boolean {
  try {
    return fs.statSync(p).isDirectory();
  } catch {
    return false;
  }
}

export function euid(): number {
  if (typeof process.geteuid !== 'function') {
    throw new RegistryError('unsafe-directory', 'the xway registry needs a POSIX system (no process.geteuid here)');
  }
  return process.geteuid();
}

/** Checks the registry directory (creating it if `create`) and returns its real path, or null if
 *  it does not exist and `create` is false. */
export function openDirectory(create: boolean): string | null {
  const dir = registryDirectory();
  const policy = sharingPolicy();
  const DIR_MODE = modes(policy).dir;
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
  // Ours to fix: the umask may have taken bits from the mode we asked for; a shared group owns it,
  // and new files in it take that group (setgid).
  if (created && st.isDirectory()) {
    if (policy.gid !== null) fs.chownSync(dir, -1, policy.gid);
    fs.chmodSync(dir, DIR_MODE | (policy.gid !== null ? 0o2000 : 0));
    st = fs.lstatSync(dir);
  }
  checkDirectory(dir, st, policy);
  return fs.realpathSync(dir); // the directory itself is no symlink; this resolves its parents
}

function checkDirectory(dir: string, st: fs.Stats, policy: SharingPolicy): void {
  const shared = isShared(policy);
  const fix = shared
    ? 'or set XWAY_DIR to a directory owned by you (or root) that only your group may write (XWAY_ALLOW_GROUP)'
    : 'or set XWAY_DIR to a directory you own with mode 0700';
  if (st.isSymbolicLink()) {
    let target = '?';
    try { target = fs.readlinkSync(dir); } catch { /* only for the message */ }
    throw new RegistryError('unsafe-directory', `the xway registry directory ${dir} is a symbolic link (to ${target}); xway only uses a real directory. Remove the link, ${fix}`);
  }
  if (!st.isDirectory()) {
    throw new RegistryError('unsafe-directory', `the xway registry directory ${dir} exists but is not a directory; remove it, ${fix}`);
  }
  const uid = euid();
  const mode = (st.mode & 0o7777).toString(8).padStart(4, '0');
  if (!shared) {
    if (st.uid !== uid) {
      throw new RegistryError('unsafe-directory', `the xway registry directory ${dir} is owned by uid ${st.uid}, not by this process's user (uid ${uid}), who could then read or replace its entries; remove it, ${fix}`);
    }
    if ((st.mode & 0o077) !== 0) {
      throw new RegistryError('unsafe-directory', `the xway registry directory ${dir} has mode ${mode}, which lets other users in; run \`chmod 700 ${dir}\`, ${fix} (to share it on purpose, see XWAY_ALLOW_GROUP / XWAY_ALLOW_UIDS)`);
    }
  } else {
    // Shared on purpose (containers of one pod or project): owned by us, by root (a volume the
    // runtime made) or by an allowed user; writable by our group at most, or by all only with the
    // sticky bit (then no one removes another's files). Entries are then judged by their owners.
    if (st.uid !== uid && st.uid !== 0 && !policy.uids.has(st.uid)) {
      throw new RegistryError('unsafe-directory', `the xway registry directory ${dir} is owned by uid ${st.uid}, which is neither this user (uid ${uid}), root, nor in XWAY_ALLOW_UIDS; ${fix}`);
    }
    if ((st.mode & 0o002) !== 0 && (st.mode & 0o1000) === 0) {
      throw new RegistryError('unsafe-directory', `the xway registry directory ${dir} has mode ${mode}: anyone may replace files in it; add the sticky bit or make it group-writable only, ${fix}`);
    }
    if ((st.mode & 0o020) !== 0 && st.gid !== policy.gid && (st.mode & 0o1000) === 0) {
      throw new RegistryError('unsafe-directory', `the xway registry directory ${dir} is writable by group ${st.gid}, which is not XWAY_ALLOW_GROUP (${policy.gid ?? 'unset'}); ${fix}`);
    }
  }
  if ((st.mode & 0o700) !== 0o700 && st.uid === uid) {
    throw new RegistryError('unsafe-directory', `the xway registry directory ${dir} has mode ${mode}; its owner needs read, write and search permission: run \`chmod u+rwx ${dir}\`, ${fix}`);
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

export function errnoOf(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | null)?.code;
}

export function ioError(what: string, err: unknown): RegistryError {
  return new RegistryError('io', `cannot ${what}: ${(err as Error).message}`, { cause: err });
}
