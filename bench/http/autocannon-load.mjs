// The load generator of the under-load scenario: autocannon (its own HTTP/1.1 client over net
// sockets, so the preload puts it on rings like any program), CONNECTIONS connections, SECONDS
// seconds after a one-second warm-up; prints one JSON line.
import autocannon from 'autocannon';

const port = Number(process.argv.at(-1));
const connections = Number(process.env.CONNECTIONS ?? 10);
const seconds = Number(process.env.SECONDS ?? 5);
const url = `http://127.0.0.1:${port}/`;
await autocannon({ url, connections, duration: 1 }); // warm-up
const r = await autocannon({ url, connections, duration: seconds });
console.log(JSON.stringify({ rps: r.requests.average, total: r.requests.total, errors: r.errors, timeouts: r.timeouts, non2xx: r.non2xx, latencyMs: r.latency.average }));
