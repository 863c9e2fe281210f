// The server of the "user's code" benchmark: what a program written for net does, nothing
// xway-specific. `node user-server.mjs` is the TCP side; `node --import xway/register
// user-server.mjs` the ring side. Prints its port, then one JSON line per connection it served:
//   stream  counts the bytes of every 'data' event; from the first 'data' after WARM_MS to 'end'
//   rr      echoes every 'data' chunk with write()
import net from 'node:net';

const mode = process.env.MODE;
const warmMs = Number(process.env.WARM_MS ?? 200);

const server = net.createServer((sock) => {
  sock.on('error', (err) => { console.error(err); process.exit(1); });
  if (mode === 'rr') {
    sock.on('data', (data) => sock.write(data));
    sock.on('end', () => sock.end());
    return;
  }
  const start = performance.now();
  let bytes = 0, t0 = 0, b0 = 0;
  let c0 = null, f0 = 0;
  sock.on('data', (data) => {
    bytes += data.length;
    if (t0 === 0 && performance.now() - start >= warmMs) {
      t0 = performance.now();
      b0 = bytes;
      c0 = process.cpuUsage();
      f0 = process.resourceUsage().minorPageFault;
    }
  });
  sock.on('end', () => {
    const seconds = (performance.now() - t0) / 1e3;
    const cpu = c0 ? process.cpuUsage(c0) : { user: 0, system: 0 };
    console.log(JSON.stringify({ bytes: bytes - b0, seconds, total: bytes, cpuS: (cpu.user + cpu.system) / 1e6, faults: process.resourceUsage().minorPageFault - f0 }));
    sock.end();
  });
});
server.listen(0, '127.0.0.1', () => console.log(server.address().port));
process.on('disconnect', () => process.exit(0));
process.on('SIGTERM', () => process.exit(0)); // exits normally, so that --cpu-prof writes its profile
