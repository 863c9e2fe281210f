// The benchmarked server: a plain node:http server answering every request with a small body.
// GET /xway-bench-stats answers this process's CPU time so far and how many of its connections
// rode a ring (the runners read it before and after a run; it is not part of the timed load).
import http from 'node:http';

const body = Buffer.from('hello from node:http\n');
const connections = { ring: 0, tcp: 0 };
const server = http.createServer((req, res) => {
  if (req.url === '/xway-bench-stats') return res.end(JSON.stringify({ cpu: process.cpuUsage(), connections }));
  res.setHeader('content-type', 'text/plain');
  res.end(body);
});
server.on('connection', (sock) => { connections[sock.transport === 'ring' ? 'ring' : 'tcp']++; });
server.listen(0, '127.0.0.1', () => console.log(server.address().port));
