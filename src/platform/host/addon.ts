// Finding and loading the native addon's binary. Two kinds of candidate, in this order:
//   - a local build, native/build/Release/xway_native.node: node-gyp made it, at install time
//     (only where no prebuilt binary loads, or when a build from source was asked for) or by hand;
//   - the prebuilt binaries shipped in the package, in prebuildify's layout:
//     prebuilds/<platform>-<arch>/xway.<libc>.node (this process's libc first).
// Every candidate is really loaded (a file that exists may still be for another libc, need a newer
// glibc, or be broken); the first that loads wins, and what the others said is kept, so that
// hostUnavailableReason() says exactly what was tried. Node-API is ABI-stable: one binary per
// platform serves every Node version from the minimum on, so no Node version is in the name.
// This file imports nothing of xway's: native/install.mjs uses it from dist/ to test the prebuilt
// binaries before deciding whether to compile.

import { createRequire } from 'node:module';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export interface AddonCandidate {
  kind: 'local build' | 'prebuilt';
  file: string;
}

export interface AddonFailure extends AddonCandidate {
  error: string;
}

export type AddonLoad =
  | { ok: true; addon: unknown; candidate: AddonCandidate; failed: AddonFailure[] }
  | { ok: false; failed: AddonFailure[]; reason: string };

/** The package's root folder (this file is dist/platform/host/addon.js, or src/… in a checkout). */
export const packageRoot = fileURLToPath(new URL('../../../', import.meta.url));

const LOCAL_BUILD = path.join('native', 'build', 'Release', 'xway_native.node');

/** `${platform}-${arch}`, the name of this platform's folder in prebuilds/. */
export function platformTuple(): string {
  return `${process.platform}-${process.arch}`;
}

let detectedLibc: 'glibc' | 'musl' | null | undefined;

/** The C library this Node process runs on (Linux only), asked once and only when the choice
 *  matters: the libc mapped into this process (/proc/self/maps, a fraction of a millisecond), else
 *  Node's diagnostic report, which names the glibc version it runs with and has none on musl (a
 *  few milliseconds). */
export function processLibc(): 'glibc' | 'musl' | null {
  if (detectedLibc !== undefined) return detectedLibc;
  if (process.platform !== 'linux') return (detectedLibc = null);
  let maps = '';
  try {
    maps = fs.readFileSync('/proc/self/maps', 'utf8');
  } catch { /* no /proc */ }
  if (/\/ld-musl-[^/\n]*\.so\.1$|\/libc\.musl-[^/\n]*$/m.test(maps)) return (detectedLibc = 'musl');
  if (/\/libc\.so\.6$|\/libc-2\.[0-9]+\.so$/m.test(maps)) return (detectedLibc = 'glibc');
  const header = (process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined)?.header;
  return (detectedLibc = header?.glibcVersionRuntime ? 'glibc' : 'musl');
}

/** The candidates that exist, in the order they are tried. */
export function addonCandidates(options: { root?: string; localBuild?: boolean } = {}): AddonCandidate[] {
  const root = options.root ?? packageRoot;
  const list: AddonCandidate[] = [];
  const local = path.join(root, LOCAL_BUILD);
  if (options.localBuild !== false && fs.existsSync(local)) list.push({ kind: 'local build', file: local });
  const dir = path.join(root, 'prebuilds', platformTuple());
  const files = readdir(dir).filter((name) => name.endsWith('.node'));
  // A file tagged with the other libc goes last; one tagged with none (another platform's
  // convention) sits between.
  const rank = (name: string) => {
    const tags = name.split('.').slice(1, -1);
    if (!tags.includes('glibc') && !tags.includes('musl')) return 1;
    return tags.includes(processLibc() ?? '') ? 0 : 2;
  };
  if (files.length > 1) files.sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));
  for (const name of files) list.push({ kind: 'prebuilt', file: path.join(dir, name) });
  return list;
}

/** Loads the first candidate that loads. */
export function loadAddon(options: { root?: string; localBuild?: boolean } = {}): AddonLoad {
  const require = createRequire(import.meta.url);
  const failed: AddonFailure[] = [];
  for (const candidate of addonCandidates(options)) {
    try {
      return { ok: true, addon: require(candidate.file), candidate, failed };
    } catch (err) {
      failed.push({ ...candidate, error: String((err as Error)?.message ?? err).split('\n')[0] });
    }
  }
  return { ok: false, failed, reason: describeFailure(failed, options.root ?? packageRoot) };
}

function describeFailure(failed: AddonFailure[], root: string): string {
  if (process.platform !== 'linux') {
    return `the host platform needs Linux, and this is ${platformTuple()} (threads channels and TCP work everywhere)`;
  }
  if (failed.length > 0) {
    return `no native addon loaded: ${failed.map((f) => `${f.kind} ${f.file}: ${f.error}`).join('; ')}`;
  }
  const shipped = readdir(path.join(root, 'prebuilds')).sort().join(', ') || 'none';
  return `the native addon is not there: no prebuilt binary for ${platformTuple()} in ${path.join(root, 'prebuilds')}`
    + ` (this package has: ${shipped}) and no local build ${path.join(root, LOCAL_BUILD)};`
    + ' `npm rebuild xway` builds one (needs a C compiler, make and python3)';
}

function readdir(dir: string): string[] {
  try {
    return fs.readdirSync(dir);
  } catch {
    return [];
  }
}
