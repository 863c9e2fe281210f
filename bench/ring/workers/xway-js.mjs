// xway, copy API with ordinary JS buffers: write(Uint8Array) / readInto(Uint8Array), i.e.
// TypedArray.prototype.set into and out of the shared memory.

import { Ring } from '../../../dist/index.js';
import { PERIOD, badSample, consume, opts, pattern, ping, pong, produce, ready, report } from './common.mjs';

const { memory, capacity, ringA, ringB, role, chunk } = opts;
const a = Ring.attach(memory, ringA, capacity);

if (role === 'producer') {
  // One view per pattern offset, made up front so the loop allocates nothing.
  const src = pattern(chunk);
  const views = Array.from({ length: PERIOD }, (_, k) => src.subarray(k, k + chunk));
  ready();
  report(produce((offset) => a.write(views[offset])));
} else if (role === 'consumer') {
  const dst = new Uint8Array(chunk);
  let bad = 0;
  ready();
  const r = consume((s) => {
    const n = a.readInto(dst);
    if (n > 0 && badSample(dst[0], dst[n - 1], s, n)) bad++;
    return n;
  });
  report({ ...r, bad });
} else {
  const b = Ring.attach(memory, ringB, capacity);
  const [tx, rx] = role === 'ping' ? [a, b] : [b, a];
  const out = new Uint8Array(1), inp = new Uint8Array(1);
  const send = (v) => { out[0] = v; while (tx.write(out) === 0); };
  const recv = () => (rx.readInto(inp) === 0 ? -1 : inp[0]);
  ready();
  report(role === 'ping' ? ping(send, recv) : pong(send, recv));
}
