// Order statistics for the few repetitions of one data point.

/** The p-quantile (0..1) of `values`, interpolating linearly between order statistics. */
export function quantile(values, p) {
  if (values.length === 0) return NaN;
  const v = [...values].sort((x, y) => x - y);
  const i = (v.length - 1) * p;
  const lo = Math.floor(i), hi = Math.ceil(i);
  return v[lo] + (v[hi] - v[lo]) * (i - lo);
}

export const median = (values) => quantile(values, 0.5);

/** Median, quartiles and extremes of `values`. */
export function summarize(values) {
  return {
    n: values.length,
    median: median(values),
    q1: quantile(values, 0.25),
    q3: quantile(values, 0.75),
    min: values.length ? Math.min(...values) : NaN,
    max: values.length ? Math.max(...values) : NaN,
  };
}
