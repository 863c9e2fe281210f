// Locating the native addon (src/platform/host/addon.ts), on real files in a temporary package
// folder: a local build first, then the prebuilt binaries (this process's libc first); a candidate
// that fails to load is passed over, and the reason names each one tried. Each probe runs in its own
// process, so no addon loaded here is shared with other tests.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const built = path.join(root, 'native/build/Release/xway_native.node');
const addonJs = path.join(root, 'dist/platform/host/addon.js');
const tuple = `${process.platform}-${process.arch}`;

function probe(dir, options = {}) {
  const code = `import(${JSON.stringify(addonJs)}).then((m) => {
    const r = m.loadAddon({ root: ${JSON.stringify(dir)}, ...${JSON.stringify(options)} });
    console.log(JSON.stringify({ ok: r.ok, file: r.ok ? r.candidate.file : null, kind: r.ok ? r.candidate.kind : null,
      available: r.ok ? r.addon.platformAvailable : null, failed: r.failed, reason: r.reason ?? null,
      order: m.addonCandidates({ root: ${JSON.stringify(dir)} }).map((c) => c.file) }));
  })`;
  return JSON.parse(execFileSync(process.execPath, ['--input-type=module', '-e', code], { encoding: 'utf8', timeout: 20_000 }));
}

function packageDir(files) {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'xway-addon-'));
  for (const [file, source] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(dir, file)), { recursive: true });
    if (source === 'garbage') writeFileSync(path.join(dir, file), 'not an ELF file\n');
    else copyFileSync(source, path.join(dir, file));
  }
  return dir;
}

test('a local build is tried first; a broken one is passed over for the prebuilt binary', () => {
  const dir = packageDir({ 'native/build/Release/xway_native.node': 'garbage', [`prebuilds/${tuple}/xway.glibc.node`]: built });
  try {
    const out = probe(dir);
    assert.ok(out.ok);
    assert.is(out.kind, 'prebuilt');
    assert.is(out.file, path.join(dir, `prebuilds/${tuple}/xway.glibc.node`));
    assert.is(out.available, true);
    assert.is(out.failed.length, 1);
    assert.is(out.failed[0].kind, 'local build');
    assert.match(out.failed[0].error, /invalid ELF header|file too short|not an ELF/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("this process's libc goes first, the other libc last", () => {
  const dir = packageDir({ [`prebuilds/${tuple}/xway.musl.node`]: 'garbage', [`prebuilds/${tuple}/xway.glibc.node`]: built });
  try {
    const out = probe(dir);
    // This machine runs glibc: its binary is tried (and loads) before the musl one.
    assert.equal(out.order.map((f) => path.basename(f)), ['xway.glibc.node', 'xway.musl.node']);
    assert.is(path.basename(out.file), 'xway.glibc.node');
    assert.equal(out.failed, []);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('nothing loads: the reason names every binary tried and what loading it said', () => {
  const dir = packageDir({ 'native/build/Release/xway_native.node': 'garbage', [`prebuilds/${tuple}/xway.glibc.node`]: 'garbage' });
  try {
    const out = probe(dir);
    assert.not.ok(out.ok);
    assert.match(out.reason, /^no native addon loaded: local build .*native\/build\/Release\/xway_native\.node: .+; prebuilt .*xway\.glibc\.node: .+/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('no binary at all: the reason says which platforms the package has, and how to build one', () => {
  const dir = packageDir({ 'prebuilds/linux-s390x/xway.glibc.node': 'garbage' });
  try {
    const out = probe(dir);
    assert.not.ok(out.ok);
    assert.match(out.reason, new RegExp(`no prebuilt binary for ${tuple} in ${dir}/prebuilds \\(this package has: linux-s390x\\)`));
    assert.match(out.reason, /npm rebuild xway/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
