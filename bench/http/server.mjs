// The benchmarked server: a plain node:http server answering every request with a small body.
import http from 'node:http';

const body = Buffer.from('hello from node:http\n');
const server = http.createServer((req, res) => {
  res.setHeader('content-type', 'text/plain');
  res.end(body);
});
server.listen(0, '127.0.0.1', () => console.log(server.address().port));
