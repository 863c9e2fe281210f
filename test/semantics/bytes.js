// Deterministic test data: the same bytes in every process that asks for them.

/** `n` pseudo-random bytes (xorshift32 from `seed`). */
export function pattern(n, seed) {
  const b = Buffer.alloc(n);
  let x = seed | 1;
  for (let i = 0; i < n; i++) { x ^= x << 13; x ^= x >>> 17; x ^= x << 5; b[i] = x; }
  return b;
}

/** A generator of pseudo-random unsigned 32-bit numbers (chunk sizes, say). */
export function rng(seed) {
  let x = seed | 1;
  return () => { x ^= x << 13; x ^= x >>> 17; x ^= x << 5; return x >>> 0; };
}
