// Order statistics over the few repetitions of one data point (as bench/ring/stats.mjs).

export interface Summary {
  n: number;
  median: number;
  min: number;
  max: number;
}

export function quantile(values: number[], p: number): number {
  if (values.length === 0) return NaN;
  const v = [...values].sort((x, y) => x - y);
  const i = (v.length - 1) * p;
  const lo = Math.floor(i), hi = Math.ceil(i);
  return v[lo] + (v[hi] - v[lo]) * (i - lo);
}

export function summarize(values: number[]): Summary {
  return {
    n: values.length,
    median: quantile(values, 0.5),
    min: values.length ? Math.min(...values) : NaN,
    max: values.length ? Math.max(...values) : NaN,
  };
}
