// examples/net-echo.mjs from CommonJS. Run: node examples/net-echo.cjs
const xway = require('xway');

const server = xway.createServer((socket) => socket.pipe(socket));
server.listen(0, '127.0.0.1', () => {
  const socket = xway.connect(server.address().port, '127.0.0.1', () => console.log(`connected over ${socket.transport}`));
  socket.setEncoding('utf8');
  socket.on('data', (text) => console.log(`echo: ${text}`));
  socket.on('close', () => server.close(() => console.log('server closed')));
  socket.end('hello through shared memory');
});
