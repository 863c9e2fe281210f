// The package's `install` step: makes sure the native addon (the host and Xen platforms) can load,
// and never makes installing xway fail because of it, since xway works without it (threads
// channels and TCP).
//   - Installed as a dependency: if a prebuilt binary for this platform loads, nothing is compiled
//     (the usual case). Otherwise, on Linux, node-gyp builds native/build/Release; if that fails
//     (no compiler, no make or python3, no Node headers), this says why and exits 0.
//     hostUnavailableReason() then says the same at run time.
//   - In a source checkout (a .git beside package.json), or when a build from source was asked for
//     (`npm rebuild xway --build-from-source`, or npm_config_build_from_source=true), it always
//     builds, and a failed build fails the install: that is what was asked for.
// With install scripts disabled (--ignore-scripts, pnpm and bun by default) none of this runs, and
// the prebuilt binary is found at run time all the same.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const checkout = fs.existsSync(path.join(root, '.git'));
const fromSource = /^(true|1|xway)$/.test(process.env.npm_config_build_from_source ?? '');
const strict = checkout || fromSource;

function say(text) {
  console.error(`xway: ${text}`);
}

/** What a fresh Node says of the prebuilt binaries: loaded, or why not. A child process, so that a
 *  binary that kills the process that loads it cannot kill the install. */
function probePrebuilt() {
  const addonJs = path.join(root, 'dist', 'platform', 'host', 'addon.js');
  if (!fs.existsSync(addonJs)) return { ok: false, reason: `${addonJs} is missing` };
  const code = `import(${JSON.stringify(pathToFileURL(addonJs).href)}).then((m) => {
    const r = m.loadAddon({ localBuild: false });
    const available = r.ok && r.addon.platformAvailable === true;
    console.log(JSON.stringify({ ok: available, file: r.ok ? r.candidate.file : null,
      reason: r.ok ? (available ? null : r.addon.unavailableReason) : r.reason }));
  })`;
  const child = spawnSync(process.execPath, ['--input-type=module', '-e', code], { encoding: 'utf8', timeout: 60_000 });
  try {
    return JSON.parse(child.stdout.trim().split('\n').pop());
  } catch {
    return { ok: false, reason: `loading it ended the process (${child.signal ?? `exit ${child.status}`}): ${child.stderr.trim().split('\n')[0] ?? ''}` };
  }
}

function build() {
  // npm (and pnpm) name the node-gyp they bundle; otherwise one on PATH.
  const gyp = process.env.npm_config_node_gyp;
  const [command, args] = gyp ? [process.execPath, [gyp]] : [process.platform === 'win32' ? 'node-gyp.cmd' : 'node-gyp', []];
  const child = spawnSync(command, [...args, 'rebuild', `--directory=${path.join(root, 'native')}`], {
    stdio: 'inherit', shell: process.platform === 'win32' && !gyp,
  });
  if (child.error) return `node-gyp could not be started (${child.error.message})`;
  return child.status === 0 ? null : `node-gyp rebuild failed (${child.signal ?? `exit ${child.status}`}; its output is above)`;
}

if (!strict) {
  const probe = probePrebuilt();
  if (probe.ok) { // a prebuilt binary for this platform loads: nothing to compile
    say(`using the prebuilt native addon ${probe.file}`); // shown with --foreground-scripts
    process.exit(0);
  }
  if (process.platform !== 'linux') {
    process.exit(0); // the host platform is Linux-only: nothing to build, threads and TCP work
  }
  say(`no prebuilt native addon loads here (${probe.reason}); building it with node-gyp`);
}

const failure = build();
if (failure === null) process.exit(0);
if (strict) {
  say(`building the native addon failed: ${failure}`);
  process.exit(1);
}
say(`the native addon could not be built: ${failure}. xway is installed and works between threads and`
  + ' over TCP; the host and Xen platforms are unavailable (hostUnavailableReason() says why).'
  + ' With a C compiler, make and python3: npm rebuild xway');
