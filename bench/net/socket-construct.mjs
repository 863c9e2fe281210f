// What constructing a socket costs, per socket: net.Socket with a connect's options (as
// net.connect makes one), net.Socket with none, and a RingSocket with the same connect options
// (src/socket/socket-options.ts says why the first is slow on Node 20). Each variant runs in a
// fresh process; the figure is the median of 7 rounds of 20,000 sockets after warm-up ones.
//
//   node bench/net/socket-construct.mjs
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const VARIANTS = {
  'net.Socket(connect options)': 'net',
  'net.Socket()': 'bare',
  'RingSocket(connect options)': 'ring',
};
const ROUNDS = 7, WARMUP = 3, PER_ROUND = 20_000;

async function child(kind) {
  const net = await import('node:net');
  const { RingSocket } = await import('../../dist/index.js');
  const make = {
    net: () => new net.Socket({ port: 8080, host: '127.0.0.1' }),
    bare: () => new net.Socket(),
    ring: () => new RingSocket({ port: 8080, host: '127.0.0.1', transport: 'force' }),
  }[kind];
  const held = [];
  const times = [];
  for (let r = 0; r < WARMUP + ROUNDS; r++) {
    const t0 = performance.now();
    for (let i = 0; i < PER_ROUND; i++) held.push(make());
    const us = ((performance.now() - t0) * 1000) / PER_ROUND;
    if (r >= WARMUP) times.push(us);
    held.length = 0;
  }
  times.sort((a, b) => a - b);
  process.stdout.write(String(times[times.length >> 1]));
}

if (process.argv[2]) {
  await child(process.argv[2]);
} else {
  const self = fileURLToPath(import.meta.url);
  const results = Object.entries(VARIANTS).map(([label, kind]) => [label, Number(execFileSync(process.execPath, [self, kind], { encoding: 'utf8' }))]);
  const base = results[0][1];
  console.log(`socket construction, median of ${ROUNDS} rounds of ${PER_ROUND.toLocaleString('en-US')} (Node ${process.version})`);
  for (const [label, us] of results) console.log(`  ${label.padEnd(30)} ${us.toFixed(2).padStart(6)} µs   ${(us / base).toFixed(2)}× the first`);
}
