// `npm run bench:http:scenarios` — two http scenarios, each over TCP loopback (`node`) and over
// xway (`node --import xway/register` on both sides, default settings), server and client in
// processes of their own, REPS alternating runs, medians and ratios measured in the same run:
//   sequential  node:http server, http.get with a keep-alive agent, REQUESTS (10,000) one at a time:
//               requests/s and CPU per request (client + server)
//   load        autocannon, CONNECTIONS (10) connections for SECONDS, against node:http and fastify:
//               requests/s and CPU per request (autocannon + server)
// CPU per request is reported whole and as its user-space part (the rest is system time: the
// kernel's TCP, wake-ups, polling's yields).
// Options: --reps N (5), --requests N (10000), --seconds S (5), --connections C (10),
//          --only sequential,http,fastify, --json
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { benchArgs } from '../args.mjs';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../..');
const v = benchArgs({
  reps: { type: 'string', default: '5', numeric: true }, requests: { type: 'string', default: '10000', numeric: true },
  seconds: { type: 'string', default: '5', numeric: true }, connections: { type: 'string', default: '10', numeric: true },
  only: { type: 'string' }, json: { type: 'boolean', default: false },
}, `usage: npm run bench:http:scenarios -- [--reps N] [--requests N] [--seconds S] [--connections C] [--only sequential,http,fastify] [--json]
  node:http with a keep-alive agent one request at a time, and autocannon against node:http and
  fastify, over TCP loopback and under --import xway/register: medians, ratios, CPU per request`);
const reps = Number(v.reps);
const only = v.only ? v.only.split(',') : ['sequential', 'http', 'fastify'];
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xway-bench-scenarios-'));
fs.chmodSync(dir, 0o700);

function node(script, ring, args = []) {
  const env = { ...process.env, XWAY_DIR: dir, REQUESTS: v.requests, SECONDS: v.seconds, CONNECTIONS: v.connections };
  delete env.XWAY_DEBUG;
  delete env.XWAY;
  const child = spawn(process.execPath, [...(ring ? ['--import', 'xway/register'] : []), path.join(here, script), ...args],
    { cwd: root, env, stdio: ['ignore', 'pipe', 'inherit'] });
  child.firstLine = new Promise((resolve, reject) => {
    createInterface({ input: child.stdout }).once('line', resolve);
    child.once('exit', (code) => reject(new Error(`${script} exited with ${code}`)));
  });
  return child;
}

async function once(scenario, ring) {
  const server = node(scenario === 'fastify' ? 'fastify-server.mjs' : 'server.mjs', ring);
  try {
    const port = await server.firstLine;
    const client = node(scenario === 'sequential' ? 'sequential-client.mjs' : 'autocannon-load.mjs', ring, [port]);
    const r = JSON.parse(await client.firstLine);
    if (r.errors || r.timeouts || r.non2xx) throw new Error(`${scenario}: ${r.errors} errors, ${r.timeouts} timeouts, ${r.non2xx} non-2xx`);
    if (r.connections && ring && r.connections.tcp > 0) throw new Error(`${scenario}: ${r.connections.tcp} connections took TCP`);
    return r;
  } finally {
    server.kill();
  }
}

const runs = {};
try {
  for (let rep = 0; rep < reps; rep++) {
    for (const scenario of only) {
      for (const ring of rep % 2 === 0 ? [false, true] : [true, false]) {
        const r = await once(scenario, ring);
        (runs[`${scenario}.${ring ? 'ring' : 'tcp'}`] ??= []).push(r);
        if (!v.json) {
          const cpu = r.clientCpuUs !== undefined ? `, CPU/request ${(r.clientCpuUs + r.serverCpuUs).toFixed(1)} µs (client ${r.clientCpuUs.toFixed(1)}, server ${r.serverCpuUs.toFixed(1)}; user space ${(r.clientUserUs + r.serverUserUs).toFixed(1)})` : '';
          process.stderr.write(`rep ${rep + 1}/${reps} ${scenario} ${ring ? 'ring' : 'tcp '} ${r.rps.toFixed(0)} req/s${cpu}\n`);
        }
      }
    }
  }
} finally {
  fs.rmSync(dir, { recursive: true, force: true });
}
const median = (x) => [...x].sort((a, b) => a - b)[x.length >> 1];
const m = (k, f) => median(runs[k].map(f));
const out = { reps, loadavg: os.loadavg(), scenarios: {} };
for (const s of only) {
  const o = { tcpRps: m(`${s}.tcp`, (r) => r.rps), ringRps: m(`${s}.ring`, (r) => r.rps) };
  o.ratio = o.ringRps / o.tcpRps;
  if (runs[`${s}.tcp`][0].clientCpuUs !== undefined) {
    o.tcpCpuUs = m(`${s}.tcp`, (r) => r.clientCpuUs + r.serverCpuUs);
    o.ringCpuUs = m(`${s}.ring`, (r) => r.clientCpuUs + r.serverCpuUs);
    o.tcpUserUs = m(`${s}.tcp`, (r) => r.clientUserUs + r.serverUserUs);
    o.ringUserUs = m(`${s}.ring`, (r) => r.clientUserUs + r.serverUserUs);
  }
  out.scenarios[s] = o;
}
if (v.json) {
  console.log(JSON.stringify({ ...out, runs }, null, 2));
} else {
  console.log(`http scenarios, median of ${reps}, load ${os.loadavg().map((x) => x.toFixed(1)).join(' ')}:`);
  for (const [s, o] of Object.entries(out.scenarios)) {
    const title = { sequential: `sequential keep-alive (${v.requests} requests)`, http: `node:http under autocannon -c ${v.connections}`, fastify: `fastify under autocannon -c ${v.connections}` }[s];
    const cpu = o.tcpCpuUs !== undefined ? `; CPU/request (user-space part) TCP ${o.tcpCpuUs.toFixed(1)} µs (${o.tcpUserUs.toFixed(1)}), xway ${o.ringCpuUs.toFixed(1)} µs (${o.ringUserUs.toFixed(1)})` : '';
    console.log(`  ${title.padEnd(40)} TCP ${o.tcpRps.toFixed(0).padStart(6)} req/s   xway ${o.ringRps.toFixed(0).padStart(6)} req/s   ${o.ratio.toFixed(2)}×${cpu}`);
  }
}
