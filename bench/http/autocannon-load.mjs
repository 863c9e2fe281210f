// The load generator of the under-load scenario: autocannon (its own HTTP/1.1 client over net
// sockets, so the preload puts it on rings like any program), CONNECTIONS connections, SECONDS
// seconds after a one-second warm-up; prints one JSON line.
import http from 'node:http';
import autocannon from 'autocannon';

const port = Number(process.argv.at(-1));
const connections = Number(process.env.CONNECTIONS ?? 10);
const seconds = Number(process.env.SECONDS ?? 5);
const url = `http://127.0.0.1:${port}/`;
const stats = () => new Promise((resolve, reject) => {
  http.get(`${url}xway-bench-stats`, (res) => {
    let text = '';
    res.on('data', (d) => { text += d; });
    res.on('end', () => resolve(JSON.parse(text)));
  }).on('error', reject);
});
const us = (u) => u.user + u.system;
await autocannon({ url, connections, duration: 1 }); // warm-up
const s0 = await stats();
const c0 = process.cpuUsage();
const r = await autocannon({ url, connections, duration: seconds });
const c = process.cpuUsage(c0);
const s1 = await stats();
const n = r.requests.total;
console.log(JSON.stringify({ rps: r.requests.average, total: n, errors: r.errors, timeouts: r.timeouts, non2xx: r.non2xx, latencyMs: r.latency.average,
  clientCpuUs: us(c) / n, serverCpuUs: (us(s1.cpu) - us(s0.cpu)) / n,
  // The user-space part: what the kernel's TCP costs shows in the rest (system time).
  clientUserUs: c.user / n, serverUserUs: (s1.cpu.user - s0.cpu.user) / n, connections: s1.connections }));
