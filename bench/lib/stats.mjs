/** Order statistics for benchmark samples (milliseconds unless a caller says otherwise). */

/**
 * The q-quantile (0..1) of `values` by linear interpolation between closest ranks.
 * @param {number[]} values
 * @param {number} q
 * @returns {number} NaN for an empty sample
 */
export function quantile(values, q) {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}

/** Median of `values`. */
export const median = (values) => quantile(values, 0.5);

/** 95th percentile of `values`. */
export const p95 = (values) => quantile(values, 0.95);

/**
 * Median, p95, min, max and count of a sample.
 * @param {number[]} values
 * @returns {{ n: number, p50: number, p95: number, min: number, max: number }}
 */
export function summarize(values) {
  return {
    n: values.length,
    p50: median(values),
    p95: p95(values),
    min: values.length ? Math.min(...values) : Number.NaN,
    max: values.length ? Math.max(...values) : Number.NaN,
  };
}
