// Sequential keep-alive requests, as a program calling a local service one request at a time:
// http.get with a keep-alive agent (one socket), REQUESTS of them after WARMUP untimed ones; prints
// requests/s and the CPU time of this process and of the server (from its stats route) per request.
import http from 'node:http';

const port = Number(process.argv.at(-1));
const requests = Number(process.env.REQUESTS ?? 10000);
const warmup = Number(process.env.WARMUP ?? 1000);
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });

function get(path) {
  return new Promise((resolve, reject) => {
    http.get({ host: '127.0.0.1', port, path, agent }, (res) => {
      const parts = [];
      res.on('data', (d) => parts.push(d));
      res.on('end', () => (res.statusCode === 200 ? resolve(Buffer.concat(parts)) : reject(new Error(`status ${res.statusCode}`))));
    }).on('error', reject);
  });
}
const stats = async () => JSON.parse(await get('/xway-bench-stats'));

for (let i = 0; i < warmup; i++) await get('/');
const s0 = await stats();
const c0 = process.cpuUsage();
const t0 = performance.now();
for (let i = 0; i < requests; i++) await get('/');
const seconds = (performance.now() - t0) / 1e3;
const c = process.cpuUsage(c0);
const s1 = await stats();
const us = (u) => u.user + u.system;
console.log(JSON.stringify({
  rps: requests / seconds,
  clientCpuUs: us(c) / requests,
  serverCpuUs: (us(s1.cpu) - us(s0.cpu)) / requests,
  // The user-space part: what the kernel's TCP costs shows in the rest (system time).
  clientUserUs: c.user / requests,
  serverUserUs: (s1.cpu.user - s0.cpu.user) / requests,
  connections: s1.connections,
}));
agent.destroy();
