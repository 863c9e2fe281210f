// npm run bench:http — requests/s of an unmodified node:http server under an undici load generator
// (separate processes), without and with `--import xway/register` on both, REPS runs each,
// alternating; prints medians and the ratio. Options: --reps N (5), --seconds S (3),
// --connections C (10), --pipelining P (1), --json.
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../..');
const arg = (name, fallback) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
};
const reps = arg('reps', 5), seconds = arg('seconds', 3), connections = arg('connections', 10), pipelining = arg('pipelining', 1);
const json = process.argv.includes('--json');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xway-bench-http-'));
fs.chmodSync(dir, 0o700);

function node(script, preload, args = []) {
  const env = { ...process.env, XWAY_DIR: dir, CONNECTIONS: String(connections), PIPELINING: String(pipelining), SECONDS: String(seconds) };
  delete env.XWAY_DEBUG;
  return spawn(process.execPath, [...(preload ? ['--import', 'xway/register'] : []), path.join(here, script), ...args], { cwd: root, env, stdio: ['ignore', 'pipe', 'inherit'] });
}
const firstLine = (child) => new Promise((resolve, reject) => {
  createInterface({ input: child.stdout }).once('line', resolve);
  child.once('exit', (code) => reject(new Error(`${child.spawnargs.at(-1)} exited with ${code}`)));
});

async function once(preload) {
  const server = node('server.mjs', preload);
  try {
    const port = await firstLine(server);
    const load = node('load.mjs', preload, [port]);
    const result = JSON.parse(await firstLine(load));
    if (result.errors) throw new Error(`${result.errors} failed requests`);
    return result.rps;
  } finally {
    server.kill();
  }
}

const results = { tcp: [], ring: [] };
try {
  for (let i = 0; i < reps; i++) {
    results.tcp.push(await once(false));
    results.ring.push(await once(true));
    if (!json) process.stderr.write(`rep ${i + 1}/${reps}: tcp ${results.tcp.at(-1).toFixed(0)} req/s, ring ${results.ring.at(-1).toFixed(0)} req/s\n`);
  }
} finally {
  fs.rmSync(dir, { recursive: true, force: true });
}
const median = (v) => [...v].sort((a, b) => a - b)[v.length >> 1];
const tcp = median(results.tcp), ring = median(results.ring);
if (json) {
  console.log(JSON.stringify({ reps, seconds, connections, pipelining, tcp: results.tcp, ring: results.ring, medianTcp: tcp, medianRing: ring, ratio: ring / tcp }));
} else {
  console.log(`node:http server, undici Pool load (${connections} connections, pipelining ${pipelining}, ${seconds} s per run, median of ${reps}):`);
  console.log(`  without preload (TCP loopback)      ${tcp.toFixed(0).padStart(8)} req/s`);
  console.log(`  with --import xway/register (ring)  ${ring.toFixed(0).padStart(8)} req/s`);
  console.log(`  ratio ring/TCP                      ${(ring / tcp).toFixed(2).padStart(8)}x`);
}
