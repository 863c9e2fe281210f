// xway, zero-copy API: writeSpans/commit and readSpans/release. The producer fills the span with
// span.set(source) (the one copy); the consumer reads in place, checking one byte per 64-byte
// cache line so every line really crosses to its core, and copies nothing out.

import { Ring } from '../../../dist/index.js';
import { PERIOD, consume, opts, pattern, ping, pong, produce, ready, report } from './common.mjs';

const { memory, capacity, ringA, ringB, role, chunk } = opts;
const a = Ring.attach(memory, ringA, capacity);

/** Checks bytes i = 0, 64, 128, ... and the last one of `span`, which starts at stream
 *  position s. Returns the number of wrong bytes. */
function checkLines(span, s) {
  let bad = 0, e = s % PERIOD;
  const n = span.length;
  for (let i = 0; i < n; i += 64) {
    if (span[i] !== e) bad++;
    e += 64 % PERIOD;
    if (e >= PERIOD) e -= PERIOD;
  }
  if (n > 0 && span[n - 1] !== (s + n - 1) % PERIOD) bad++;
  return bad;
}

if (role === 'producer') {
  const src = pattern(chunk);
  const views = Array.from({ length: PERIOD }, (_, k) => src.subarray(k, k + chunk));
  ready();
  report(produce((offset) => {
    const [x, y] = a.writeSpans(chunk);
    const n = Math.min(chunk, x.length + y.length);
    if (n === 0) return 0;
    const v = views[offset];
    if (x.length >= n) x.set(n === chunk ? v : v.subarray(0, n));
    else { x.set(v.subarray(0, x.length)); y.set(v.subarray(x.length, n)); }
    a.commit(n);
    return n;
  }));
} else if (role === 'consumer') {
  let bad = 0;
  ready();
  const r = consume((s) => {
    const [x, y] = a.readSpans(chunk);
    const n = Math.min(chunk, x.length + y.length);
    if (n === 0) return 0;
    if (x.length >= n) bad += checkLines(n === x.length ? x : x.subarray(0, n), s);
    else { bad += checkLines(x, s); bad += checkLines(y.subarray(0, n - x.length), s + x.length); }
    a.release(n);
    return n;
  });
  report({ ...r, bad });
} else {
  const b = Ring.attach(memory, ringB, capacity);
  const [tx, rx] = role === 'ping' ? [a, b] : [b, a];
  const send = (v) => {
    let x;
    while ((x = tx.writeSpans(1)[0]).length === 0);
    x[0] = v;
    tx.commit(1);
  };
  const recv = () => {
    const x = rx.readSpans(1)[0];
    if (x.length === 0) return -1;
    const v = x[0];
    rx.release(1);
    return v;
  };
  ready();
  report(role === 'ping' ? ping(send, recv) : pong(send, recv));
}
