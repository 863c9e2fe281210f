// xway between two processes: a host channel (listenHost / connectHost), data copied with the
// ring's writeFrom / readTo (memory.copy in the core) from and to scratch space in this thread's
// region pool, the same memory the channel is mapped into.
//
// Policies, for what a side does when it cannot progress:
//   busy    spin on the ring: no waits, no notifications (bounded by the run's deadline);
//   notify  announce the wait (prepareWaitData / prepareWaitSpace), armWake(), return to the
//           event loop and carry on in onwake; the other side notifies when a ring call set
//           peerNeedsWake;
//   spin    busy-poll for up to SPIN_MS, then as notify.
// Teardown is event-driven in every policy: a side that has sent its end of stream waits for
// the other's before closing, so that both directions end cleanly (no reset).

import { connectHost, listenHostChannels, regionPool } from '../../../dist/index.js';
import { PERIOD, RR_BATCH, badSample, pattern, rttSummary } from '../shared.mjs';
import { GRACE_MS, config, connectAddress, finish, now, ready, send } from './common.mjs';

const { role, mode, chunk, capacity, policy, warmMs, durMs } = config;
/** How long the spin policy busy-polls before it announces a wait. */
const SPIN_MS = 0.05;

// Scratch areas in the region pool, before the channel so the channel is mapped last.
const pool = regionPool();
const SCRATCH = 65536 + 4096;
// allocate() gives a place (a memory of the pool and an offset in it); the channel's chunks are
// mapped into the same memory after it, so the core copies between them with plain addresses.
const scratch = pool.allocate(2 * SCRATCH);
const src = scratch.offset;
const dst = src + SCRATCH;

let end, B; // the channel end; a byte view over the pool memory once it has its final size
let spinSince = 0;
let watchdog;

/** When a side cannot progress: true to try again at once, false when it armed a wake-up and
 *  must return to the event loop (onwake continues). */
function stall(prepareWait) {
  if (policy === 'busy') return true;
  if (policy === 'spin') {
    const t = now();
    if (spinSince === 0) spinSince = t;
    if (t - spinSince < SPIN_MS) return true;
  }
  spinSince = 0;
  if (!prepareWait()) return true; // became ready meanwhile
  end.armWake();
  return false;
}

/** Sends end of stream, waits for the peer's, then reports and closes. */
function endAndReport(result) {
  const { tx, rx } = end.channel;
  tx.end();
  if (tx.peerNeedsWake) end.notify();
  const check = () => {
    for (;;) {
      if (rx.finished) {
        if (rx.peek(1) !== 0) throw new Error('unexpected data from the peer');
        end.onwake = null;
        clearTimeout(watchdog);
        finish(result, () => end.close());
        return;
      }
      if (rx.prepareWaitData()) return end.armWake();
      if (rx.peek(1) !== 0) throw new Error('unexpected data from the peer');
    }
  };
  end.onwake = check;
  check();
}

function stuck(result) {
  end.onwake = null;
  finish({ ...result, stuck: true }, () => end.close());
}

// ---- stream ------------------------------------------------------------------------------------

function producer() {
  const { tx } = end.channel;
  const deadline = now() + warmMs + durMs;
  let s = 0;
  const step = () => {
    let t = now();
    for (let it = 1; ; it++) {
      if ((it & 127) === 0) t = now();
      if (t > deadline) return endAndReport({ sent: s });
      const n = tx.writeFrom(src + (s % PERIOD), chunk);
      if (tx.peerNeedsWake) end.notify();
      s += n;
      if (n === chunk) {
        spinSince = 0;
        continue;
      }
      if (!stall(() => tx.prepareWaitSpace(chunk))) return;
    }
  };
  end.onwake = step;
  step();
}

function consumer() {
  const { rx } = end.channel;
  const start = now(), mark = start + warmMs, hard = mark + durMs + GRACE_MS;
  let s = 0, t0 = 0, b0 = 0, bad = 0, empties = 0;
  const step = () => {
    for (let it = 1; ; it++) {
      const n = rx.readTo(dst, chunk);
      if (rx.peerNeedsWake) end.notify();
      if (n > 0) {
        if (badSample(B[dst], B[dst + n - 1], s, n)) bad++;
        s += n;
        spinSince = 0;
        if (t0 === 0 && (it & 127) === 0) {
          const t = now();
          if (t >= mark) { t0 = t; b0 = s; }
        }
        continue;
      }
      if (policy !== 'busy' || (++empties & 63) === 0) {
        if (rx.finished && rx.peek(1) === 0) {
          const t1 = now();
          if (t0 === 0) { t0 = start; b0 = 0; }
          return endAndReport({ received: s, bytes: s - b0, seconds: (t1 - t0) / 1e3, bad, stuck: false });
        }
        const t = now();
        if (t0 === 0 && t >= mark) { t0 = t; b0 = s; }
        if (t > hard) return stuck({ received: s, bad });
      }
      if (!stall(() => rx.prepareWaitData())) return;
    }
  };
  end.onwake = step;
  step();
}

// ---- 1-byte round trips ----------------------------------------------------------------------

// One byte in each direction, at this side's own scratch addresses.
const out = src, inp = dst;

function sendByte(tx, b) {
  B[out] = b;
  if (tx.writeFrom(out, 1) !== 1) throw new Error('no room for one byte in a round trip');
  if (tx.peerNeedsWake) end.notify();
}

function ping() {
  const { tx, rx } = end.channel;
  const start = now(), mark = start + warmMs, stop = mark + durMs, hard = stop + GRACE_MS;
  const samples = new Float64Array(1 << 20);
  let n = 0, i = 0, bad = 0, t = start, empties = 0;
  const step = () => {
    for (;;) {
      const r = rx.readTo(inp, 1);
      if (rx.peerNeedsWake) end.notify();
      if (r === 0) {
        if ((policy !== 'busy' || (++empties & 0xffff) === 0) && now() > hard) return stuck({ trips: i, bad });
        if (!stall(() => rx.prepareWaitData())) return;
        continue;
      }
      spinSince = 0;
      if (B[inp] !== (i & 255)) bad++;
      i++;
      if (i % RR_BATCH === 0) {
        const t2 = now();
        if (t >= mark && n < samples.length) samples[n++] = (t2 - t) / RR_BATCH;
        t = t2;
        if (t > stop) return endAndReport({ ...rttSummary(samples.subarray(0, n)), trips: i, bad, stuck: false });
      }
      sendByte(tx, i & 255);
    }
  };
  end.onwake = step;
  sendByte(tx, 0);
  step();
}

function pong() {
  const { tx, rx } = end.channel;
  const hard = now() + warmMs + durMs + GRACE_MS;
  let echoed = 0, empties = 0;
  const step = () => {
    for (;;) {
      const r = rx.readTo(inp, 1);
      if (rx.peerNeedsWake) end.notify();
      if (r > 0) {
        spinSince = 0;
        echoed++;
        sendByte(tx, B[inp]);
        continue;
      }
      if (policy !== 'busy' || (++empties & 0xffff) === 0) {
        if (rx.finished && rx.peek(1) === 0) return endAndReport({ echoed });
        if (now() > hard) return stuck({ echoed });
      }
      if (!stall(() => rx.prepareWaitData())) return;
    }
  };
  end.onwake = step;
  step();
}

// ---- set-up --------------------------------------------------------------------------------------

const run = { producer, consumer, ping, pong }[role];

function onChannel(e) {
  end = e;
  if (end.channel.memory !== scratch.memory) throw new Error('the channel is not in the scratch area\'s memory');
  B = pool.view(scratch.memory);
  pattern(chunk, B.subarray(src));
  end.onpeergone = (reason) => {
    throw new Error(`peer gone: ${reason}`);
  };
  ready(() => {
    // Reports a lost wake-up (or any hang) as stuck rather than waiting for the parent's kill.
    watchdog = setTimeout(() => stuck({}), warmMs + durMs + 2 * GRACE_MS).unref();
    run();
  });
}

if (config.listen) {
  const listener = listenHostChannels(config.listen, { capacity, maxCapacity: capacity }, (e) => {
    listener.close(); // one channel per run
    onChannel(e);
  });
  send({ listening: config.listen });
} else {
  onChannel(await connectHost(await connectAddress(), { capacity }));
}
