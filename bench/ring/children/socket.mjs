// The kernel's way between two processes: a net socket over TCP loopback (127.0.0.1) or a Unix
// domain socket, driven by the event loop as socket code normally is. Stream: writes of `chunk`
// bytes while write() returns true, then wait for 'drain'; the reader consumes every 'data'
// chunk and checks its first and last byte. RR: 1-byte writes with setNoDelay(true), echoed.

import net from 'node:net';
import { PERIOD, RR_BATCH, badSample, pattern, rttSummary } from '../shared.mjs';
import { GRACE_MS, config, connectAddress, finish, now, ready, send } from './common.mjs';

const { role, mode, chunk, transport, warmMs, durMs } = config;
const address = (a) => (transport === 'tcp' ? { host: '127.0.0.1', port: a } : { path: a });
let watchdog;

function stuck(sock, result) {
  finish({ ...result, stuck: true }, () => sock.destroy());
}

function producer(sock) {
  const src = Buffer.from(pattern(chunk).buffer);
  const views = Array.from({ length: PERIOD }, (_, k) => src.subarray(k, k + chunk));
  const deadline = now() + warmMs + durMs;
  let s = 0;
  const pump = () => {
    for (;;) {
      if (now() > deadline) {
        sock.end();
        return;
      }
      const ok = sock.write(views[s % PERIOD]);
      s += chunk;
      if (!ok) return sock.once('drain', pump);
    }
  };
  // The consumer ends its side once it has read everything; then both ends are closed.
  sock.on('close', () => {
    clearTimeout(watchdog);
    finish({ sent: s });
  });
  pump();
}

function consumer(sock) {
  const start = now(), mark = start + warmMs;
  let s = 0, t0 = 0, b0 = 0, bad = 0;
  sock.on('data', (buf) => {
    const n = buf.length;
    if (badSample(buf[0], buf[n - 1], s, n)) bad++;
    s += n;
    if (t0 === 0) {
      const t = now();
      if (t >= mark) { t0 = t; b0 = s; }
    }
  });
  sock.on('end', () => {
    const t1 = now();
    if (t0 === 0) { t0 = start; b0 = 0; }
    clearTimeout(watchdog);
    finish({ received: s, bytes: s - b0, seconds: (t1 - t0) / 1e3, bad, stuck: false }, () => sock.end());
  });
}

function ping(sock) {
  const start = now(), mark = start + warmMs, stop = mark + durMs;
  const samples = new Float64Array(1 << 20);
  const one = Buffer.alloc(1);
  let n = 0, i = 0, bad = 0, t = start, done = false;
  sock.on('data', (buf) => {
    if (done) return void bad++;
    // One byte is in flight at a time, so every read is exactly that byte.
    if (buf.length !== 1 || buf[0] !== (i & 255)) bad++;
    i++;
    if (i % RR_BATCH === 0) {
      const t2 = now();
      if (t >= mark && n < samples.length) samples[n++] = (t2 - t) / RR_BATCH;
      t = t2;
      if (t > stop) {
        done = true;
        sock.end();
        return;
      }
    }
    one[0] = i & 255;
    sock.write(one);
  });
  sock.on('close', () => {
    clearTimeout(watchdog);
    finish({ ...rttSummary(samples.subarray(0, n)), trips: i, bad, stuck: !done });
  });
  one[0] = 0;
  sock.write(one);
}

function pong(sock) {
  let echoed = 0;
  sock.on('data', (buf) => {
    echoed += buf.length;
    sock.write(buf);
  });
  sock.on('end', () => {
    clearTimeout(watchdog);
    finish({ echoed }, () => sock.end());
  });
}

const run = { producer, consumer, ping, pong }[role];

function onSocket(sock) {
  if (mode === 'rr') sock.setNoDelay(true);
  sock.on('error', (err) => {
    throw err;
  });
  ready(() => {
    watchdog = setTimeout(() => stuck(sock, {}), warmMs + durMs + 2 * GRACE_MS).unref();
    run(sock);
  });
}

if (config.listen) {
  const server = net.createServer((sock) => {
    server.close(); // one connection per run
    onSocket(sock);
  });
  server.listen(transport === 'tcp' ? { host: '127.0.0.1', port: 0 } : { path: config.listen }, () => {
    send({ listening: transport === 'tcp' ? server.address().port : config.listen });
  });
} else {
  const where = await connectAddress();
  const sock = net.connect(address(where), () => onSocket(sock));
}
