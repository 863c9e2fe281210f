// The load generator: an undici Pool (CONNECTIONS connections, PIPELINING requests in flight on
// each) firing GET requests for SECONDS, after a short warm-up; prints one JSON line.
import { Pool } from 'undici';

const port = Number(process.argv.at(-1));
const connections = Number(process.env.CONNECTIONS ?? 10);
const pipelining = Number(process.env.PIPELINING ?? 1);
const seconds = Number(process.env.SECONDS ?? 3);
const pool = new Pool(`http://127.0.0.1:${port}`, { connections, pipelining });

async function worker(until, counts) {
  while (performance.now() < until) {
    const { statusCode, body } = await pool.request({ path: '/', method: 'GET' });
    await body.dump();
    if (statusCode === 200) counts.ok++;
    else counts.errors++;
  }
}
async function phase(ms) {
  const counts = { ok: 0, errors: 0 };
  const until = performance.now() + ms;
  const t0 = performance.now();
  await Promise.all(Array.from({ length: connections * pipelining }, () => worker(until, counts)));
  return { ...counts, ms: performance.now() - t0 };
}
await phase(500); // warm-up
const r = await phase(seconds * 1000);
console.log(JSON.stringify({ requests: r.ok, errors: r.errors, rps: r.ok / (r.ms / 1000) }));
await pool.close();
