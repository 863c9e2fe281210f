// The client of the "user's code" benchmark: net.connect, write() until it returns false, then
// wait for 'drain' (stream); or one CHUNK-byte write, wait for the echo, again (rr). Plain net
// code, the same for both transports. Prints one JSON line.
//   stream  writes CHUNK-byte Buffers for WARM_MS + DUR_MS, then end()s and waits for 'close'
//   rr      round trips for WARM_MS + DUR_MS; reports the median of the timed ones (batches of 8)
import net from 'node:net';

const port = Number(process.argv.at(-1));
const mode = process.env.MODE;
const chunk = Number(process.env.CHUNK ?? 65536);
const warmMs = Number(process.env.WARM_MS ?? 200);
const durMs = Number(process.env.DUR_MS ?? 1000);
const BATCH = 8;

const sock = net.connect(port, '127.0.0.1');
sock.on('error', (err) => { console.error(err); process.exit(1); });
sock.on('connect', () => (mode === 'rr' ? rr() : stream()));

function stream() {
  const data = Buffer.alloc(chunk, 0x61);
  const deadline = performance.now() + warmMs + durMs;
  let sent = 0;
  const pump = () => {
    while (performance.now() < deadline) {
      sent += chunk;
      if (!sock.write(data)) return void sock.once('drain', pump);
    }
    sock.end();
  };
  sock.on('data', () => {});
  sock.on('close', () => console.log(JSON.stringify({ sent })));
  pump();
}

function rr() {
  const one = Buffer.alloc(chunk, 0x62);
  const start = performance.now(), mark = start + warmMs, stop = mark + durMs;
  const samples = [];
  let got = 0, trips = 0, t = start, c0 = null, t0 = 0;
  sock.on('data', (data) => {
    got += data.length;
    if (got < chunk) return;
    got -= chunk;
    if (++trips % BATCH === 0) {
      const now = performance.now();
      if (t >= mark) {
        samples.push((now - t) * 1e3 / BATCH);
        if (!c0) { c0 = process.cpuUsage(); t0 = now; }
      }
      t = now;
      if (now > stop) {
        const cpu = process.cpuUsage(c0);
        samples.sort((a, b) => a - b);
        const medianUs = samples[samples.length >> 1];
        console.log(JSON.stringify({ medianUs, trips, timedTrips: samples.length * BATCH, cpuS: (cpu.user + cpu.system) / 1e6, seconds: (now - t0) / 1e3 }));
        sock.end();
        return;
      }
    }
    sock.write(one);
  });
  sock.write(one);
}
