// MessagePort between the two workers: postMessage of chunk-size Uint8Arrays (structured clone,
// a copy each way), driven by the event loop as MessagePort code normally is.
// Stream: credit-based flow control keeps at most one ring's worth (capacity bytes) in flight;
// the receiver returns credit every quarter window. RR: 1-byte ping/pong via 'message' events.

import { PERIOD, badSample, now, opts, pattern, ready, report, rttSummary } from './common.mjs';

const { port, role, chunk, capacity, warmMs, durMs } = opts;
const windowMsgs = Math.max(4, Math.floor(capacity / chunk));
const ackEvery = windowMsgs >> 2;

if (role === 'producer') {
  // A message clones its whole ArrayBuffer, so each pattern offset gets a chunk-size buffer of
  // its own (made on first use; with whole-chunk messages only a few offsets ever occur).
  const src = pattern(chunk);
  const chunks = new Array(PERIOD);
  const chunkAt = (k) => (chunks[k] ??= src.slice(k, k + chunk));
  let credit = windowMsgs, s = 0, finished = false, deadline = 0, it = 0;
  const pump = () => {
    while (credit > 0 && !finished) {
      port.postMessage(chunkAt(s % PERIOD));
      s += chunk;
      credit--;
      if ((++it & 15) === 0 && now() > deadline) {
        finished = true;
        port.postMessage({ done: s });
      }
    }
  };
  port.on('message', (m) => { credit += m; pump(); });
  port.on('close', () => report({ sent: s })); // the consumer closes once it has everything
  ready();
  deadline = now() + warmMs + durMs;
  pump();
} else if (role === 'consumer') {
  let s = 0, n = 0, bad = 0, t0 = 0, b0 = 0, start = 0, mark = 0;
  port.on('message', (m) => {
    if (m instanceof Uint8Array) {
      if (badSample(m[0], m[m.length - 1], s, m.length)) bad++;
      s += m.length;
      if (++n === ackEvery) { port.postMessage(n); n = 0; }
      if (t0 === 0 && now() >= mark) { t0 = now(); b0 = s; }
      return;
    }
    const t1 = now();
    if (t0 === 0) { t0 = start; b0 = 0; }
    report({ received: s, sent: m.done, bytes: s - b0, seconds: (t1 - t0) / 1e3, bad, stuck: false });
    port.close();
  });
  ready();
  start = now();
  mark = start + warmMs;
} else if (role === 'ping') {
  const samples = new Float64Array(1 << 22);
  const out = new Uint8Array(1);
  let n = 0, i = 0, bad = 0, trips = 0, t = 0, mark = 0, end = 0;
  port.on('message', (m) => {
    if (m[0] !== (i & 255)) bad++;
    trips++;
    const t2 = now();
    if (t >= mark && n < samples.length) samples[n++] = t2 - t;
    t = t2;
    if (t > end) {
      report({ ...rttSummary(samples.subarray(0, n)), trips, bad, stuck: false });
      port.close();
      return;
    }
    out[0] = ++i & 255;
    port.postMessage(out);
  });
  ready();
  t = now();
  mark = t + warmMs;
  end = mark + durMs;
  out[0] = 0;
  port.postMessage(out);
} else {
  port.on('message', (m) => port.postMessage(m));
  port.on('close', () => report({}));
  ready();
}
