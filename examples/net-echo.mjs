// The net API over a ring: an echo server and a client in one process (they could as well be two
// processes on this host). Run: node examples/net-echo.mjs
import xway from 'xway';

const server = xway.createServer((socket) => socket.pipe(socket));
server.listen(0, '127.0.0.1', () => {
  const { port } = server.address();
  const socket = xway.connect(port, '127.0.0.1', () => console.log(`connected over ${socket.transport}`));
  socket.setEncoding('utf8');
  socket.on('data', (text) => console.log(`echo: ${text}`));
  socket.on('close', () => server.close(() => console.log('server closed')));
  socket.end('hello through shared memory');
});
