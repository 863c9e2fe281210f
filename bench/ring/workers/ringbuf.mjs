// ringbuf.js 0.4.0: its RingBuffer of Uint8Array over a SharedArrayBuffer, push/pop.

import { RingBuffer } from 'ringbuf.js';
import { badSample, consume, opts, pattern, ping, pong, produce, ready, report } from './common.mjs';

const { sabA, sabB, role, chunk } = opts;
const a = new RingBuffer(sabA, Uint8Array);

if (role === 'producer') {
  const src = pattern(chunk);
  ready();
  report(produce((offset, len) => a.push(src, len, offset)));
} else if (role === 'consumer') {
  const dst = new Uint8Array(chunk);
  let bad = 0;
  ready();
  const r = consume((s) => {
    const n = a.pop(dst, chunk);
    if (n > 0 && badSample(dst[0], dst[n - 1], s, n)) bad++;
    return n;
  });
  report({ ...r, bad });
} else {
  const b = new RingBuffer(sabB, Uint8Array);
  const [tx, rx] = role === 'ping' ? [a, b] : [b, a];
  const out = new Uint8Array(1), inp = new Uint8Array(1);
  const send = (v) => { out[0] = v; while (tx.push(out, 1) === 0); };
  const recv = () => (rx.pop(inp, 1) === 0 ? -1 : inp[0]);
  ready();
  report(role === 'ping' ? ping(send, recv) : pong(send, recv));
}
