// Runs an unmodified server program and an unmodified client program as separate processes, once
// as they are and once with the xway/register preload, and returns what each printed. The
// programs know nothing of xway: the preload comes from the command line (--import / --require)
// or NODE_OPTIONS, exactly as a user would start them. XWAY_DEBUG=1 is set in both runs (without
// the preload nothing reads it), so the preloaded run's stderr says which transport each
// connection took and how many bytes each ring connection carried.
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const FIXTURES = path.join(ROOT, 'test/register/fixtures');

/** A fresh owner-only registry directory; remove() at the end. */
export function tempRegistry() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xreg-'));
  fs.chmodSync(dir, 0o700);
  return { dir, remove: () => fs.rmSync(dir, { recursive: true, force: true }) };
}

const PRELOADS = {
  none: { args: [], env: {} },
  import: { args: ['--import', 'xway/register'], env: {} },
  require: { args: ['--require', 'xway/register'], env: {} },
  'node-options': { args: [], env: { NODE_OPTIONS: '--import=xway/register' } },
};

/** Starts `node [preload] fixtures/<file> ...args`; resolves once it printed its first line
 *  (a server's port) when `waitLine` is set. */
export function start(file, { preload = 'none', args = [], env = {}, waitLine = false, ms = 20_000 } = {}) {
  const p = PRELOADS[preload];
  const inherited = { ...process.env };
  delete inherited.FORCE_COLOR; // the test runner's: it would colour the programs' console.log output
  delete inherited.NODE_OPTIONS;
  const child = spawn(process.execPath, [...p.args, path.join(FIXTURES, file), ...args], {
    cwd: ROOT, // `xway/register` resolves from the package itself (its exports map)
    env: { ...inherited, XWAY_DEBUG: '1', ...p.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.out = '';
  child.err = '';
  child.stderr.setEncoding('utf8').on('data', (d) => { child.err += d; });
  const lines = createInterface({ input: child.stdout });
  let first;
  const firstLine = new Promise((resolve) => (first = resolve));
  let n = 0;
  lines.on('line', (line) => {
    if (n++ === 0 && waitLine) first(line);
    else child.out += `${line}\n`;
  });
  child.exited = new Promise((resolve) => child.on('close', (code, signal) => resolve({ code, signal })));
  child.firstLine = waitLine ? bounded(Promise.race([firstLine, child.exited.then(() => {
    throw new Error(`${file} exited before printing its port: ${child.err}`);
  })]), ms, `${file} did not print its port`) : null;
  return child;
}

export function bounded(promise, ms, what) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(`${what} within ${ms} ms`)), ms); }),
  ]).finally(() => clearTimeout(timer));
}

/** Ends `child` (SIGTERM, then SIGKILL) and waits for it, bounded. */
export async function stop(child, ms = 10_000) {
  if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
  try {
    return await bounded(child.exited, ms, 'child did not exit');
  } catch (err) {
    child.kill('SIGKILL');
    throw err;
  }
}

/**
 * One run of a pair: the server (printing its port first), then the client with the port as its
 * last argument; the client must exit 0 by itself, then the server is stopped with SIGTERM — once
 * `serverDone(output)` holds when given (a server that reports after the client left would
 * otherwise race the signal, over TCP as over a ring).
 */
export async function runPair({ server, client, preload = 'none', clientPreload = preload, serverArgs = [], clientArgs = [], env = {}, ms = 60_000, serverDone = null }) {
  const srv = start(server, { preload, args: serverArgs, env, waitLine: true });
  let cli;
  try {
    const port = (await srv.firstLine).trim();
    cli = start(client, { preload: clientPreload, args: [...clientArgs, port], env });
    const { code, signal } = await bounded(cli.exited, ms, `${client} did not finish`);
    if (code !== 0) throw new Error(`${client} exited with ${code ?? signal}:\n${cli.err}\n--- server:\n${srv.err}`);
    // Not fatal: a server that never says as much as expected fails the caller's comparison.
    if (serverDone) await bounded(until(() => serverDone(srv.out)), 10_000, 'server output').catch(() => {});
    // The server logs each ring connection's bytes when it closes; connections the client left
    // open at its exit (a keep-alive agent's) close when the server sees it gone: let it log them.
    const count = (re) => srv.err.split('\n').filter((l) => re.test(l)).length;
    await bounded(until(() => count(/^xway: close \S+ ring connection/) >= count(/^xway: accept .*<- ring \(/)), 5_000, 'ring closes logged').catch(() => {});
    await stop(srv);
    return { port: Number(port), client: cli.out, server: srv.out, clientErr: cli.err, serverErr: srv.err };
  } finally {
    if (cli && cli.exitCode === null) cli.kill('SIGKILL');
    if (srv.exitCode === null) srv.kill('SIGKILL');
  }
}

async function until(predicate) {
  while (!predicate()) await new Promise((resolve) => setTimeout(resolve, 10));
}

/** The preload's XWAY_DEBUG lines in `text`. */
export function debugLines(text) {
  return text.split('\n').filter((l) => l.startsWith('xway: '));
}

/** What the preload's debug lines say about the connections to `port`. */
export function ringReport(run) {
  const lines = debugLines(run.clientErr + run.serverErr);
  const p = `:${run.port} `;
  const ringConnects = lines.filter((l) => l.startsWith('xway: connect') && l.includes(p) && l.includes('-> ring')).length;
  const tcpConnects = lines.filter((l) => l.startsWith('xway: connect') && l.includes(p) && l.includes('-> tcp'));
  const accepts = lines.filter((l) => l.startsWith('xway: accept') && l.includes(p) && l.includes('<- ring ('));
  let bytes = 0;
  for (const l of lines) {
    const m = /^xway: close \S+ ring connection \(pid \d+, (\d+) bytes in, (\d+) bytes out\)/.exec(l);
    if (m && l.includes(p)) bytes += Number(m[1]) + Number(m[2]);
  }
  return { ringConnects, tcpConnects, accepts: accepts.length, acceptLines: accepts, bytes, lines };
}

/** Runs the pair without and with the preload; returns both runs and the ring report of the second. */
export async function compare(options) {
  const reg = tempRegistry();
  try {
    const env = { XWAY_DIR: reg.dir, ...options.env };
    const plain = await runPair({ ...options, env, preload: 'none', clientPreload: 'none' });
    // The preloaded server gets the time to say as much as the plain one did before it is stopped.
    const lines = plain.server.split('\n').length;
    const serverDone = (out) => out.split('\n').length >= lines;
    const preloaded = await runPair({ ...options, env, serverDone, preload: options.preload ?? 'import', clientPreload: options.clientPreload ?? options.preload ?? 'import' });
    return { plain, preloaded, report: ringReport(preloaded) };
  } finally {
    reg.remove();
  }
}
