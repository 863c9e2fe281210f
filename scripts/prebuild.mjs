// `npm run build:prebuilds` (and `prepack`, so `npm pack` and `npm publish` always ship fresh binaries):
// builds the native addon's prebuilt binaries into prebuilds/ with prebuildify, one per
// platform, libc and architecture this machine has a compiler for. Node-API is ABI-stable, so one
// binary serves every Node version from the minimum on.
//
//   prebuilds/linux-x64/xway.glibc.node     gcc (this machine's own)
//   prebuilds/linux-x64/xway.musl.node      musl-gcc (Debian: musl-tools)
//   prebuilds/linux-arm64/xway.glibc.node   aarch64-linux-gnu-gcc (Debian: gcc-aarch64-linux-gnu)
//
// Each is compiled from a copy of native/ in a temporary folder, so native/build (the checkout's
// own build, which the tests load) is never touched. prebuilds/ starts empty each time, so nothing
// stale ships. A target whose compiler is missing is skipped with a note; XWAY_PREBUILDS=all makes
// that an error (for a release). Run it through npm (npm run build:prebuilds): npm puts its node-gyp on
// PATH and says where Node's headers are.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';

const root = fileURLToPath(new URL('..', import.meta.url));
const require = createRequire(import.meta.url);
const prebuildify = path.join(path.dirname(require.resolve('prebuildify/package.json')), 'bin.js');

/** What this machine can build: its own platform always, and the cross targets of a Linux x64 host. */
function targets() {
  const own = { arch: process.arch, libc: libcOf(), cc: process.env.CC || 'cc', strip: 'strip' };
  if (process.platform !== 'linux') return [{ ...own, libc: null }];
  const list = [own];
  if (process.arch === 'x64') {
    list.push({ arch: 'x64', libc: 'musl', cc: 'musl-gcc', strip: 'strip', package: 'musl-tools' });
    list.push({ arch: 'arm64', libc: 'glibc', cc: 'aarch64-linux-gnu-gcc', strip: 'aarch64-linux-gnu-strip', package: 'gcc-aarch64-linux-gnu' });
  }
  return list.filter((t, i) => list.findIndex((u) => u.arch === t.arch && u.libc === t.libc) === i);
}

function libcOf() {
  return process.report.getReport().header.glibcVersionRuntime ? 'glibc' : 'musl';
}

function has(command) {
  return spawnSync('sh', ['-c', `command -v "${command}"`], { stdio: 'ignore' }).status === 0;
}

/** Compiles one target; returns null, or why it failed (with the compiler's output). */
function build(target) {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'xway-prebuild-'));
  try {
    fs.cpSync(path.join(root, 'native', 'binding.gyp'), path.join(tmp, 'binding.gyp'));
    fs.cpSync(path.join(root, 'native', 'src'), path.join(tmp, 'src'), { recursive: true });
    const args = [prebuildify, '--napi', '--strip', '--name', 'xway', '--arch', target.arch, '--strip-bin', target.strip,
      '--target', `node@${process.versions.node}`, '--out', root];
    if (target.libc) args.push('--libc', target.libc, '--tag-libc', target.libc);
    // The addon is C only: the compiler links it too (no C++ runtime, no g++ for the target).
    const env = { ...process.env, CC: target.cc, CXX: target.cc, LINK: target.cc };
    const child = spawnSync(process.execPath, [...args, '--cwd', tmp], { cwd: tmp, env, encoding: 'utf8' });
    if (child.status === 0) return null;
    return `${child.error?.message ?? `exit ${child.status ?? child.signal}`}\n${child.stdout}${child.stderr}`;
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

const strict = process.env.XWAY_PREBUILDS === 'all';
fs.rmSync(path.join(root, 'prebuilds'), { recursive: true, force: true });
let failed = 0;
for (const target of targets()) {
  const name = `${process.platform}-${target.arch}${target.libc ? ` ${target.libc}` : ''}`;
  if (!has(target.cc)) {
    const note = `${name}: skipped, no ${target.cc}${target.package ? ` (Debian: apt-get install ${target.package})` : ''}`;
    console.error(`prebuild ${note}`);
    if (strict) failed++;
    continue;
  }
  const started = Date.now();
  const failure = build(target);
  if (failure === null) {
    console.error(`prebuild ${name}: built with ${target.cc} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  } else {
    console.error(`prebuild ${name}: FAILED with ${target.cc}: ${failure}`);
    failed++;
  }
}
for (const file of listPrebuilds()) console.error(`prebuild: ${file} (${fs.statSync(path.join(root, file)).size} bytes)`);
process.exitCode = failed ? 1 : 0;

function listPrebuilds() {
  const dir = path.join(root, 'prebuilds');
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir).flatMap((tuple) => fs.readdirSync(path.join(dir, tuple)).map((f) => path.join('prebuilds', tuple, f)));
}
