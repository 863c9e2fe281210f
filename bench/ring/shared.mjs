// Helpers shared by the thread workers (workers/) and the child processes (children/): the byte
// pattern every stream carries, its sample check and the round-trip summary. No side effects, so
// either kind of script can import it.

/** Stream byte at position s is s % PERIOD: a prime, so a misplaced chunk shows up in samples. */
export const PERIOD = 251;

/** Source bytes: any `chunk` bytes from offset s % PERIOD carry stream positions s... */
export function pattern(chunk, into = new Uint8Array(chunk + PERIOD)) {
  for (let i = 0; i < chunk + PERIOD; i++) into[i] = i % PERIOD;
  return into;
}

/** True when `n` bytes at stream position s do not start and end as the pattern says. */
export function badSample(first, last, s, n) {
  return first !== s % PERIOD || last !== (s + n - 1) % PERIOD;
}

/** Round trips per timed sample: the clock ticks in 10s of ns here and costs about as much, so
 *  one reading per trip would blur sub-µs round trips. Same in c/spsc.c. */
export const RR_BATCH = 8;

/** Median and quartiles of round-trip samples in ms, as µs. */
export function rttSummary(samples) {
  if (samples.length === 0) return { samples: 0, medianUs: NaN };
  samples.sort();
  const q = (p) => samples[Math.min(samples.length - 1, Math.floor(p * samples.length))] * 1e3;
  return { samples: samples.length, medianUs: q(0.5), p10Us: q(0.1), p90Us: q(0.9) };
}
