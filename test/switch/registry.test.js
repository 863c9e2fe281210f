// The host registry: entries appear and disappear, stale ones (dead or recycled pids, garbage) are
// removed by readers, and an unsafe directory is refused with a message saying what to fix.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { testIf } from '../helpers.js';
import { execFileSync, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import {
  controlPathFor, listEndpoints, lookupEndpoint, parseProcStat, processStartTime, registerEndpoint,
  registryDirectory, RegistryError,
} from '../../dist/switch/registry.js';
import { nativeAddon } from '../../dist/platform/host/native.js';
import { ownNamespaces } from '../../dist/switch/namespace.js';

const NS = ownNamespaces();
/** This namespace's entry file for `port`, and the fields every entry of ours carries. */
const entryName = (port) => `port-${port}-${NS.netns || '0'}.json`;
const nsFields = (host) => ({ addresses: host === '' ? [] : [host], netns: NS.netns, pidns: NS.pidns, container: NS.container });

const REGISTRANT = new URL('./fixtures/registrant.js', import.meta.url).pathname;
const LOOKUP = new URL('./fixtures/lookup.js', import.meta.url).pathname;
const isRoot = process.geteuid() === 0;
const made = [];
const children = [];
const sockets = [];

/** Listens on `controlPath` (an entry is live only while its control socket is there) and returns it. */
function listening(controlPath) {
  sockets.push(nativeAddon().ctlListen(controlPath, () => {}));
  return controlPath;
}

/** A fresh owner-only directory as XWAY_DIR. */
function freshDir() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xr-'));
  made.push(dir);
  process.env.XWAY_DIR = dir;
  return fs.realpathSync(dir);
}

test.after.each(async () => {
  // A failed assertion must not leave a registrant running (it would keep this process alive).
  await Promise.all(children.splice(0).map((kill) => kill()));
  for (const listener of sockets.splice(0)) listener.close();
  for (const dir of made.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
  delete process.env.XWAY_DIR;
});

const mode = (p) => fs.lstatSync(p).mode & 0o777;
const exists = (p) => { try { fs.lstatSync(p); return true; } catch { return false; } };

/** Starts fixtures/registrant.js and resolves with its 'ready' line and a kill() that waits for
 *  the process to be reaped. */
function startRegistrant(modeName, port) {
  const child = spawn(process.execPath, [REGISTRANT, modeName, String(port)], { stdio: ['ignore', 'pipe', 'inherit'], env: process.env });
  const exited = new Promise((resolve) => child.on('exit', resolve));
  const kill = async () => { child.kill('SIGKILL'); await exited; };
  children.push(kill);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error('registrant not ready within 5 s')); }, 5000);
    createInterface({ input: child.stdout }).once('line', (line) => {
      clearTimeout(timer);
      const message = JSON.parse(line);
      if (message.event !== 'ready') { reject(new Error(`registrant: ${message.message}`)); return; }
      resolve({ ...message, pid: child.pid, kill });
    });
  });
}

/** Asserts `fn` throws a RegistryError with `reason` and a message matching every pattern. */
function throwsRegistry(fn, reason, ...patterns) {
  let caught;
  try { fn(); } catch (err) { caught = err; }
  assert.ok(caught, 'expected a RegistryError, nothing was thrown');
  assert.instance(caught, RegistryError);
  assert.is(caught.code, 'ERR_XWAY_REGISTRY');
  assert.is(caught.reason, reason, caught.message);
  for (const p of patterns) assert.match(caught.message, p);
  return caught;
}

test('register, look up, close: entry and directory are owner-only; close twice is fine', () => {
  const dir = freshDir();
  fs.chmodSync(dir, 0o700);
  const controlPath = listening(controlPathFor(4100));
  assert.is(path.dirname(controlPath), dir);
  const reg = registerEndpoint({ port: 4100, host: '127.0.0.1', controlPath, ringCapacity: 65536 });
  assert.is(reg.entryPath, path.join(dir, entryName(4100)));
  assert.is(mode(reg.entryPath), 0o600);
  assert.is(mode(dir), 0o700);
  const found = lookupEndpoint(4100);
  assert.equal(found, reg.entry);
  assert.is(found.pid, process.pid);
  assert.is(found.startTime, processStartTime(process.pid));
  assert.is(found.controlPath, controlPath);
  assert.is(found.ringCapacity, 65536);
  assert.equal(fs.readdirSync(dir).sort(), [path.basename(controlPath), entryName(4100)].sort(), 'no temporary file left');
  assert.is(lookupEndpoint(4101), null);
  reg.close();
  assert.not.ok(exists(reg.entryPath));
  assert.is(lookupEndpoint(4100), null);
  reg.close();
  fs.rmSync(dir, { recursive: true });
  reg.close(); // even with the directory gone
});

test('the directory is created with mode 0700 whatever the umask, and read from the environment at each call', () => {
  const parent = freshDir();
  const dir = path.join(parent, 'reg');
  process.env.XWAY_DIR = dir;
  assert.is(registryDirectory(), dir);
  assert.is(lookupEndpoint(4102), null, 'a missing directory is no entries');
  assert.not.ok(exists(dir), 'lookup does not create it');
  const old = process.umask(0o277);
  try {
    registerEndpoint({ port: 4102, host: '', controlPath: listening(controlPathFor(4102)) });
  } finally {
    process.umask(old);
  }
  assert.is(mode(dir), 0o700);
  assert.is(mode(path.join(dir, entryName(4102))), 0o600);
  assert.is(lookupEndpoint(4102).port, 4102);
});

test('default directory: $XDG_RUNTIME_DIR/xway when it exists, else <tmpdir>/xway-<uid>', () => {
  const saved = process.env.XDG_RUNTIME_DIR;
  const savedTmp = process.env.TMPDIR;
  try {
    const xdg = freshDir();
    delete process.env.XWAY_DIR;
    process.env.XDG_RUNTIME_DIR = xdg;
    assert.is(registryDirectory(), path.join(xdg, 'xway'));
    process.env.XDG_RUNTIME_DIR = path.join(xdg, 'missing');
    assert.is(registryDirectory(), path.join(os.tmpdir(), `xway-${process.geteuid()}`));
    // The temporary directory is remembered, but only while TMPDIR says the same.
    process.env.TMPDIR = xdg;
    assert.is(registryDirectory(), path.join(xdg, `xway-${process.geteuid()}`));
    delete process.env.TMPDIR;
    assert.is(registryDirectory(), path.join(os.tmpdir(), `xway-${process.geteuid()}`));
  } finally {
    if (saved === undefined) delete process.env.XDG_RUNTIME_DIR;
    else process.env.XDG_RUNTIME_DIR = saved;
    if (savedTmp === undefined) delete process.env.TMPDIR;
    else process.env.TMPDIR = savedTmp;
  }
});

test('parseProcStat counts fields from the last ")" of the command name', () => {
  const tail = 'S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 424242 20 21';
  assert.equal(parseProcStat(`123 (a) b) (c d) ${tail}`), { state: 'S', startTime: 424242 });
  assert.equal(parseProcStat(`123 (x) ${tail}`), { state: 'S', startTime: 424242 });
  assert.is(parseProcStat('123 (x) S 1 2'), null);
  assert.is(parseProcStat('garbage'), null);
  const mine = parseProcStat(fs.readFileSync('/proc/self/stat', 'latin1'));
  assert.ok(mine.startTime > 0);
});

test('an entry of a process killed with SIGKILL is stale: lookup returns null and removes it and its socket', async () => {
  const dir = freshDir();
  const peer = await startRegistrant('register', 4200);
  assert.is(peer.entry.pid, peer.pid);
  assert.equal(lookupEndpoint(4200), peer.entry, 'live while the process runs');
  assert.ok(fs.lstatSync(peer.controlPath).isSocket());
  await peer.kill();
  assert.ok(exists(path.join(dir, entryName(4200))), 'the dead process left its entry');
  assert.is(lookupEndpoint(4200), null);
  assert.not.ok(exists(path.join(dir, entryName(4200))), 'entry removed');
  assert.not.ok(exists(peer.controlPath), 'control socket removed');
});

test('a live pid with another start time (a recycled pid) is stale', () => {
  const dir = freshDir();
  const reg = registerEndpoint({ port: 4300, host: '127.0.0.1', controlPath: listening(controlPathFor(4300)) });
  for (const pid of [process.ppid, 1]) {
    const real = processStartTime(pid);
    assert.ok(real !== null, `process ${pid} exists`);
    const forged = { ...reg.entry, pid, startTime: real + 1 };
    fs.writeFileSync(reg.entryPath, JSON.stringify(forged), { mode: 0o600 });
    assert.is(lookupEndpoint(4300), null, `pid ${pid} with a wrong start time`);
    assert.not.ok(exists(reg.entryPath));
  }
  // The same forgery with the right start time is live: the start time alone decided above.
  const real = processStartTime(process.ppid);
  fs.writeFileSync(reg.entryPath, JSON.stringify({ ...reg.entry, pid: process.ppid, startTime: real }), { mode: 0o600 });
  assert.is(lookupEndpoint(4300)?.pid, process.ppid);
  reg.close();
  assert.ok(exists(reg.entryPath), 'close() leaves an entry that is no longer ours');
  assert.equal(fs.readdirSync(dir).sort(), [path.basename(reg.entry.controlPath), entryName(4300)].sort());
});

test('an exited process not yet reaped (a zombie) is dead', async () => {
  const dir = freshDir();
  // The shell's background child exits after `exec sleep` replaced the shell, which never reaps it,
  // so it stays a zombie. (With `sleep 0` the shell sometimes reaps it before the exec.)
  const parent = spawn('sh', ['-c', 'sleep 0.05 & echo $!; exec sleep 10'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = new Promise((resolve) => parent.on('exit', resolve));
  children.push(async () => { parent.kill('SIGKILL'); await exited; });
  const zombie = Number(await new Promise((resolve) => createInterface({ input: parent.stdout }).once('line', resolve)));
  let stat;
  for (let i = 0; i < 200 && stat?.state !== 'Z'; i++) {
    stat = parseProcStat(fs.readFileSync(`/proc/${zombie}/stat`, 'latin1'));
    if (stat.state !== 'Z') await new Promise((r) => setTimeout(r, 5));
  }
  assert.is(stat.state, 'Z', 'the child became a zombie');
  const file = path.join(dir, entryName(4350));
  const entry = {
    version: 2, port: 4350, host: '', ...nsFields(''), pid: zombie, startTime: stat.startTime,
    controlPath: path.join(dir, 'ctl-4350.sock'), ringCapacity: 262144, createdAt: Date.now(),
  };
  fs.writeFileSync(file, JSON.stringify(entry), { mode: 0o600 });
  assert.is(processStartTime(zombie), null);
  assert.is(lookupEndpoint(4350), null);
  assert.not.ok(exists(file));
});

test('garbage entries are treated as stale: null, removed, no throw; a valid one is kept', async () => {
  const dir = freshDir();
  const outside = fs.mkdtempSync(path.join(os.tmpdir(), 'xr-out-'));
  made.push(outside);
  const outsideSocket = path.join(outside, 'evil.sock');
  fs.writeFileSync(outsideSocket, 'not ours to delete');
  const port = 4400;
  const valid = {
    version: 2, port, host: '127.0.0.1', ...nsFields('127.0.0.1'), pid: process.pid, startTime: processStartTime(process.pid),
    controlPath: path.join(dir, `ctl-${port}-${process.pid}-1.sock`), ringCapacity: 262144, createdAt: Date.now(),
  };
  const file = path.join(dir, entryName(port));
  const cases = {
    'not JSON': '{"version": 2, "port":',
    'an array': '[1, 2, 3]',
    'huge (valid JSON padded past 4 KiB)': JSON.stringify(valid) + ' '.repeat(5000),
    'port as a string': JSON.stringify({ ...valid, port: String(port) }),
    'negative port': JSON.stringify({ ...valid, port: -port }),
    'port not matching the file name': JSON.stringify({ ...valid, port: port + 1 }),
    'fractional pid': JSON.stringify({ ...valid, pid: process.pid + 0.5 }),
    'missing startTime': JSON.stringify({ ...valid, startTime: undefined }),
    'controlPath outside the directory': JSON.stringify({ ...valid, controlPath: outsideSocket }),
    'controlPath escaping with ..': JSON.stringify({ ...valid, controlPath: `${dir}/../evil.sock` }),
    'relative controlPath': JSON.stringify({ ...valid, controlPath: 'ctl.sock' }),
    'ringCapacity not a power of two': JSON.stringify({ ...valid, ringCapacity: 100000 }),
    'host not a string': JSON.stringify({ ...valid, host: 127 }),
    'addresses not IP addresses': JSON.stringify({ ...valid, addresses: ['example.com'] }),
    'netns not the file name\'s': JSON.stringify({ ...valid, netns: '12345' }),
  };
  for (const [name, text] of Object.entries(cases)) {
    fs.writeFileSync(file, text, { mode: 0o600 });
    let result;
    try { result = lookupEndpoint(port); } catch (err) { assert.unreachable(`${name}: threw ${err.message}`); }
    assert.is(result, null, name);
    assert.not.ok(exists(file), `${name}: removed`);
  }
  // A symlink as the entry, pointing at a valid entry elsewhere: not followed, the link removed.
  const elsewhere = path.join(outside, 'entry.json');
  fs.writeFileSync(elsewhere, JSON.stringify(valid));
  fs.symlinkSync(elsewhere, file);
  assert.is(lookupEndpoint(port), null, 'symlink');
  assert.not.ok(exists(file), 'symlink removed');
  assert.ok(exists(elsewhere) && exists(outsideSocket), 'nothing outside the directory touched');

  // A FIFO as the entry: not opened for blocking reads, and removed.
  execFileSync('mkfifo', ['-m', '600', file]);
  assert.is(lookupEndpoint(port), null, 'FIFO');
  assert.not.ok(exists(file), 'FIFO removed');

  // A Unix socket as the entry (open() fails with ENXIO): removed too.
  const server = net.createServer();
  await new Promise((resolve) => server.listen(file, resolve));
  assert.is(lookupEndpoint(port), null, 'socket');
  assert.not.ok(exists(file), 'socket removed');
  server.close();

  // Control: the untampered entry (its control socket listening) is accepted, so each rejection
  // above was for its defect.
  listening(valid.controlPath);
  fs.writeFileSync(file, JSON.stringify(valid), { mode: 0o600 });
  assert.equal(lookupEndpoint(port), valid);
});

test('an entry in a newer format with a live owner is not used and not removed', () => {
  const dir = freshDir();
  const file = path.join(dir, entryName(4450));
  fs.writeFileSync(file, JSON.stringify({ version: 3, pid: process.pid, startTime: processStartTime(process.pid), whatever: true }));
  assert.is(lookupEndpoint(4450), null);
  assert.ok(exists(file));
  throwsRegistry(() => registerEndpoint({ port: 4450, host: '', controlPath: listening(controlPathFor(4450)) }), 'address-in-use', /newer format/);
});

test('a port registered by another live process is in use; after it dies, registering replaces the stale entry', async () => {
  const dir = freshDir();
  const peer = await startRegistrant('register', 4500);
  const controlPath = listening(controlPathFor(4500));
  throwsRegistry(() => registerEndpoint({ port: 4500, host: '127.0.0.1', controlPath }), 'address-in-use',
    /EADDRINUSE/, new RegExp(`process ${peer.pid}\\b`));
  assert.equal(lookupEndpoint(4500), peer.entry, 'the live entry is untouched');
  await peer.kill();
  const reg = registerEndpoint({ port: 4500, host: '127.0.0.1', controlPath });
  assert.is(lookupEndpoint(4500).pid, process.pid);
  assert.not.ok(exists(peer.controlPath), 'the dead owner\'s socket went with its entry');
  // A second registration of our own live entry is in use too.
  throwsRegistry(() => registerEndpoint({ port: 4500, host: '127.0.0.1', controlPath }), 'address-in-use', /this process/);
  reg.close();
  assert.equal(fs.readdirSync(dir), [path.basename(controlPath)], 'only our control socket is left');
});

test('listEndpoints: live entries by port; stale entries, dead sockets and old leftovers swept', async () => {
  const dir = freshDir();
  // Ports whose names sort differently as text (readdir order) and as numbers.
  const a = registerEndpoint({ port: 10000, host: '', controlPath: listening(controlPathFor(10000)) });
  const b = registerEndpoint({ port: 4601, host: '', controlPath: listening(controlPathFor(4601)) });
  const c = registerEndpoint({ port: 999, host: '', controlPath: listening(controlPathFor(999)) });
  const dead = await startRegistrant('register', 4603);
  const orphan = await startRegistrant('orphan', 4604);
  const alive = await startRegistrant('orphan', 4605);
  await Promise.all([dead.kill(), orphan.kill()]);
  fs.writeFileSync(path.join(dir, entryName(4606)), 'garbage');
  const oldTemp = path.join(dir, '.tmp-1-abc');
  const newTemp = path.join(dir, '.tmp-2-abc');
  fs.writeFileSync(oldTemp, '');
  fs.writeFileSync(newTemp, '');
  const longAgo = new Date(Date.now() - 3600_000);
  fs.utimesSync(oldTemp, longAgo, longAgo);

  assert.equal(listEndpoints(), [c.entry, b.entry, a.entry]);
  const left = fs.readdirSync(dir).sort();
  const ours = [a, b, c].map((r) => path.basename(r.entry.controlPath));
  assert.equal(left, [...ours, path.basename(newTemp), path.basename(alive.controlPath), entryName(4601), entryName(10000), entryName(999)].sort());
  await alive.kill();
  for (const r of [a, b, c]) r.close();
});

testIf(test, isRoot, 'needs root to run a process as another user')('an entry of a live process of another user (EPERM) is neither used nor removed', () => {
  // The reader runs as uid 65534 in its own registry; the entry names this (root) process.
  const dir = freshDir();
  fs.chownSync(dir, 65534, 65534);
  const file = path.join(dir, entryName(4750));
  const lookupAsNobody = () => JSON.parse(execFileSync(process.execPath, [LOOKUP, '4750'],
    { uid: 65534, gid: 65534, env: { ...process.env, XWAY_DIR: dir }, encoding: 'utf8' }));
  const entry = {
    version: 2, port: 4750, host: '', ...nsFields(''), pid: process.pid, startTime: processStartTime(process.pid),
    controlPath: path.join(dir, 'ctl-4750.sock'), ringCapacity: 262144, createdAt: Date.now(),
  };
  fs.writeFileSync(file, JSON.stringify(entry), { mode: 0o600 });
  fs.chownSync(file, 65534, 65534);
  assert.equal(lookupAsNobody(), { entry: null, exists: true });
  // Control: with a wrong start time the same reader judges it stale and can remove it.
  fs.writeFileSync(file, JSON.stringify({ ...entry, startTime: entry.startTime + 1 }));
  assert.equal(lookupAsNobody(), { entry: null, exists: false });
});

test('unsafe directories are refused with what to fix, and left as they are', () => {
  const open = freshDir();
  fs.chmodSync(open, 0o755);
  for (const call of [() => controlPathFor(4700), () => lookupEndpoint(4700), () => listEndpoints()]) {
    throwsRegistry(call, 'unsafe-directory', /mode 0755/, /chmod 700/, /XWAY_DIR/);
  }
  assert.is(mode(open), 0o755, 'not chmod-ed behind the user\'s back');

  const real = freshDir();
  const link = path.join(open, 'link');
  fs.symlinkSync(real, link);
  process.env.XWAY_DIR = link;
  throwsRegistry(() => controlPathFor(4700), 'unsafe-directory', /symbolic link/, /XWAY_DIR/);
  throwsRegistry(() => lookupEndpoint(4700), 'unsafe-directory', /symbolic link/);

  const file = path.join(real, 'plain-file');
  fs.writeFileSync(file, '');
  process.env.XWAY_DIR = file;
  throwsRegistry(() => lookupEndpoint(4700), 'unsafe-directory', /not a directory/);
});

testIf(test, isRoot, 'needs root to give a directory to another user')('a directory owned by another user is refused', () => {
  const dir = freshDir();
  fs.chownSync(dir, 65534, 65534);
  throwsRegistry(() => controlPathFor(4800), 'unsafe-directory', /owned by uid 65534/, new RegExp(`uid ${process.geteuid()}`));
  throwsRegistry(() => lookupEndpoint(4800), 'unsafe-directory', /owned by uid 65534/);
});

test('a control socket path longer than 107 bytes is refused, with the fix', () => {
  const base = freshDir();
  const long = path.join(base, 'd'.repeat(100 - base.length));
  fs.mkdirSync(long, { mode: 0o700 });
  process.env.XWAY_DIR = long;
  throwsRegistry(() => controlPathFor(4900), 'path-too-long', /107/, /XWAY_DIR/);
  // Just short enough passes: the limit is the one that matters, not a rough one.
  const fits = path.join(base, 'e'.repeat(107 - base.length - 1 - `/ctl-4900-${process.pid}-${processStartTime(process.pid)}.sock`.length));
  fs.mkdirSync(fits, { mode: 0o700 });
  process.env.XWAY_DIR = fits;
  assert.is(Buffer.byteLength(controlPathFor(4900)), 107);
  const tooLong = fits + 'e';
  fs.mkdirSync(tooLong, { mode: 0o700 });
  process.env.XWAY_DIR = tooLong;
  throwsRegistry(() => controlPathFor(4900), 'path-too-long', /108 bytes/);
});

test('bad arguments are refused before anything is written', () => {
  const dir = freshDir();
  assert.throws(() => registerEndpoint({ port: 0, host: '', controlPath: path.join(dir, 'x.sock') }), (e) => e.code === 'ERR_OUT_OF_RANGE');
  assert.throws(() => lookupEndpoint(70000), (e) => e.code === 'ERR_OUT_OF_RANGE');
  throwsRegistry(() => registerEndpoint({ port: 4950, host: '', controlPath: '/tmp/elsewhere.sock' }), 'invalid-argument', /not inside the registry directory/);
  throwsRegistry(() => registerEndpoint({ port: 4950, host: '', controlPath: path.join(dir, entryName(1)) }), 'invalid-argument', /registry file/);
  assert.equal(fs.readdirSync(dir), []);
});

test('workers of one cluster (one group) each register the port; lookups take them in turn; a dead member is dropped', async () => {
  const dir = freshDir();
  const port = 4960;
  const controlPath = listening(controlPathFor(port));
  const first = registerEndpoint({ port, host: '127.0.0.1', controlPath, group: 777 });
  // A second worker: another live process of the same group.
  const sleeper = spawn('sleep', ['30'], { stdio: 'ignore' });
  const exited = new Promise((resolve) => sleeper.on('exit', resolve));
  children.push(async () => { sleeper.kill('SIGKILL'); await exited; });
  await new Promise((resolve) => sleeper.on('spawn', resolve));
  const second = registerEndpoint({ port, host: '127.0.0.1', controlPath, pid: sleeper.pid, group: 777 });
  assert.match(path.basename(second.entryPath), new RegExp(`^member-${port}-${NS.netns || '0'}-${sleeper.pid}-\\d+\\.json$`));
  // Another group, or no group, still finds the port in use.
  throwsRegistry(() => registerEndpoint({ port, host: '127.0.0.1', controlPath, pid: sleeper.pid, group: 778 }), 'address-in-use');
  const seen = new Set();
  for (let i = 0; i < 6; i++) seen.add(lookupEndpoint(port).pid);
  assert.equal([...seen].sort(), [process.pid, sleeper.pid].sort(), 'both workers are chosen');
  assert.equal(listEndpoints().filter((e) => e.port === port).map((e) => e.pid).sort(), [process.pid, sleeper.pid].sort());
  // The first worker leaves: the member still serves the port.
  first.close();
  assert.is(lookupEndpoint(port).pid, sleeper.pid, 'a member serves once the first entry is gone');
  sleeper.kill('SIGKILL');
  await exited;
  assert.is(lookupEndpoint(port), null, 'and nobody once it dies too');
  assert.not.ok(exists(second.entryPath), 'the dead member\'s entry is removed');
});

test.run();
