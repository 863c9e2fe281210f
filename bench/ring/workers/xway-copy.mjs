// xway, copy API with the data already in wasm memory: writeFrom / readTo are one memory.copy
// each inside the core. The producer's source and the consumer's destination are areas of the
// same shared memory (see peers.mjs for the layout).

import { Ring } from '../../../dist/index.js';
import { badSample, consume, opts, pattern, ping, pong, produce, ready, report } from './common.mjs';

const { memory, capacity, ringA, ringB, srcAddr, dstAddr, role, chunk } = opts;
const bytes = new Uint8Array(memory.buffer);
const a = Ring.attach(memory, ringA, capacity);

if (role === 'producer') {
  pattern(chunk, bytes.subarray(srcAddr));
  ready();
  report(produce((offset, len) => a.writeFrom(srcAddr + offset, len)));
} else if (role === 'consumer') {
  let bad = 0;
  ready();
  const r = consume((s) => {
    const n = a.readTo(dstAddr, chunk);
    if (n > 0 && badSample(bytes[dstAddr], bytes[dstAddr + n - 1], s, n)) bad++;
    return n;
  });
  report({ ...r, bad });
} else {
  // Round trip: ping writes ring A and reads ring B, pong the other way round.
  const b = Ring.attach(memory, ringB, capacity);
  const [tx, rx] = role === 'ping' ? [a, b] : [b, a];
  // One byte in each direction, at this side's own scratch addresses.
  const out = role === 'ping' ? srcAddr : srcAddr + 64, inp = dstAddr + (role === 'ping' ? 0 : 64);
  const send = (v) => { bytes[out] = v; while (tx.writeFrom(out, 1) === 0); };
  const recv = () => (rx.readTo(inp, 1) === 0 ? -1 : bytes[inp]);
  ready();
  report(role === 'ping' ? ping(send, recv) : pong(send, recv));
}
