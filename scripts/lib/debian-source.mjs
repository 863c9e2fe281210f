// Fetches Debian source packages (Node's own tests, popular libraries' test suites) with apt-get,
// without changing the system's apt configuration: each suite gets its own sources file
// (deb-src only), index directory and cache under ~/.cache/xway-debian/, passed to apt with
// -o Dir::Etc::SourceList=… / SourceParts / Dir::State::Lists / Dir::Cache. Binary package
// installs (apt-get install) never see these indices.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** Suites tried in turn until one carries an acceptable version (aliases, so the list ages well). */
export const SUITES = ['stable', 'oldstable', 'testing', 'unstable'];
const MIRROR = 'http://deb.debian.org/debian';
const KEYRING = '/usr/share/keyrings/debian-archive-keyring.gpg';
const INDEX_MAX_AGE_MS = 24 * 3600 * 1000;

/** `${XDG_CACHE_HOME:-~/.cache}/<name>` */
export function cacheDir(name) {
  return path.join(process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache'), name);
}

/** The apt options that point apt at one suite's private sources file and state. */
function aptOptions(suite) {
  const dir = path.join(cacheDir('xway-debian'), 'apt', suite);
  const sources = path.join(dir, 'sources.list');
  if (!fs.existsSync(sources)) {
    for (const sub of ['lists/partial', 'cache/archives/partial', 'sources.list.d']) {
      fs.mkdirSync(path.join(dir, sub), { recursive: true });
    }
    fs.writeFileSync(sources, `deb-src [signed-by=${KEYRING}] ${MIRROR} ${suite} main\n`);
  }
  const options = [
    `Dir::Etc::SourceList=${sources}`,
    `Dir::Etc::SourceParts=${path.join(dir, 'sources.list.d')}`,
    `Dir::State::Lists=${path.join(dir, 'lists')}`,
    `Dir::Cache=${path.join(dir, 'cache')}`,
  ];
  // As root apt downloads as the _apt user, who cannot enter /root/.cache; say so instead of
  // letting it warn on every download.
  if (process.getuid?.() === 0) options.push('APT::Sandbox::User=root');
  return { dir, args: options.flatMap((o) => ['-o', o]) };
}

function apt(command, args, options = {}) {
  return execFileSync(command, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], ...options });
}

/** Refreshes a suite's Sources index when it is missing or older than a day. */
function updateIndex(suite) {
  const { dir, args } = aptOptions(suite);
  const stamp = path.join(dir, 'updated');
  const age = fs.existsSync(stamp) ? Date.now() - fs.statSync(stamp).mtimeMs : Infinity;
  if (age < INDEX_MAX_AGE_MS) return;
  apt('apt-get', [...args, '-qq', 'update']);
  fs.writeFileSync(stamp, '');
}

/** Source versions of `pkg` in `suite`, newest first, per `apt-cache madison`. */
function versionsIn(suite, pkg) {
  const { args } = aptOptions(suite);
  const out = apt('apt-cache', [...args, 'madison', pkg]);
  return out.split('\n')
    .filter((line) => line.includes('Sources'))
    .map((line) => line.split('|')[1].trim());
}

/**
 * Finds the first suite (in `suites` order) whose source package `pkg` has a version `accept`s
 * and downloadable, downloads its upstream tarball (`<pkg>_<upstream>.orig.tar.*`, not the component tarballs or
 * Debian's packaging) into ~/.cache/xway-debian/<pkg>_<version>/ and returns
 * { pkg, version, suite, tarball }. Only that file is fetched, with apt's own downloader checking
 * it against the SHA-256 of the signed index; it is kept, so a second call costs no network.
 */
export function fetchSource(pkg, { accept = () => true, suites = SUITES, log = () => {} } = {}) {
  if (!fs.existsSync('/usr/bin/apt-get')) throw new Error('apt-get is needed to fetch Debian source packages');
  const tried = [];
  for (const suite of suites) {
    updateIndex(suite);
    const versions = versionsIn(suite, pkg);
    tried.push(`${suite}: ${versions.join(', ') || 'none'}`);
    const version = versions.find(accept);
    if (!version) continue;
    const { args } = aptOptions(suite);
    // Lines of: 'URI' filename size SHA256:hash
    const uris = apt('apt-get', [...args, '-qq', 'source', '--print-uris', `${pkg}=${version}`]);
    const orig = uris.split('\n').map((l) => l.split(' ')).find(([, name]) => /\.orig\.tar\.\w+$/.test(name ?? ''));
    if (!orig) throw new Error(`${pkg} ${version}: no upstream tarball in\n${uris}`);
    const [uri, name, , hash] = orig;
    const dir = path.join(cacheDir('xway-debian'), `${pkg}_${version}`);
    const tarball = path.join(dir, name);
    if (!fs.existsSync(tarball)) {
      log(`downloading ${name} (Debian ${suite})`);
      fs.mkdirSync(dir, { recursive: true });
      try {
        apt('/usr/lib/apt/apt-helper', [...args, 'download-file', uri.replace(/^'|'$/g, ''), `${tarball}.part`, hash]);
      } catch (error) {
        // A mirror can lack a file its index names (seen here: 404s behind a caching proxy);
        // another suite's version may still be had.
        tried[tried.length - 1] += ` (${version} not downloadable: ${String(error.stderr).split('\n')[0]})`;
        continue;
      }
      fs.renameSync(`${tarball}.part`, tarball);
    }
    return { pkg, version, suite, tarball };
  }
  throw new Error(`no acceptable version of Debian source package ${pkg} (${tried.join('; ')})`);
}

/**
 * Extracts the members matching `patterns` (GNU tar wildcards, relative to the tarball's top
 * folder, e.g. 'test/common/*') into `dest`, which is made anew. Only what is asked for is
 * unpacked: Debian's patches are not applied (the tests run as upstream wrote them).
 */
export function extract(tarball, dest, patterns) {
  // tar needs xz for .tar.xz (nodejs): install it from Debian when it is missing.
  if (tarball.endsWith('.xz') && !['/usr/bin/xz', '/bin/xz'].some((p) => fs.existsSync(p))) {
    apt('apt-get', ['install', '-y', '-qq', 'xz-utils'], { env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
  }
  fs.rmSync(dest, { recursive: true, force: true });
  fs.mkdirSync(dest, { recursive: true });
  apt('tar', ['-xf', tarball, '-C', dest, '--strip-components=1', '--wildcards', '--no-wildcards-match-slash', ...patterns.map((p) => `*/${p}`)]);
}
