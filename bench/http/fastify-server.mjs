// The benchmarked fastify server: one route with a small body, as its own benchmarks use; and the
// same stats route as server.mjs.
import Fastify from 'fastify';

const connections = { ring: 0, tcp: 0 };
const app = Fastify({ logger: false });
app.get('/', async () => ({ hello: 'world' }));
app.get('/xway-bench-stats', async () => ({ cpu: process.cpuUsage(), connections }));
app.server.on('connection', (sock) => { connections[sock.transport === 'ring' ? 'ring' : 'tcp']++; });
await app.listen({ port: 0, host: '127.0.0.1' });
console.log(app.server.address().port);
