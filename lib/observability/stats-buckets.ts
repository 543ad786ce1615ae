/**
 * Upper bounds (ms, inclusive) of the fixed histogram of the per-minute rollups and of the
 * Prometheus histograms: from 1 ms to an hour, with one last bucket for anything longer. Fixed, so
 * rows of every process and every minute add up bucket by bucket.
 */
export const STATS_BUCKET_BOUNDS_MS: readonly number[] = [
  1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10_000, 30_000, 60_000, 300_000, 900_000, 3_600_000,
];

/** Number of buckets of a rollup histogram: one per bound, plus the overflow bucket. */
export const STATS_BUCKET_COUNT = STATS_BUCKET_BOUNDS_MS.length + 1;

/** Index of the bucket `ms` falls in (the first bound ≥ it, or the overflow bucket). */
export function bucketOf(ms: number): number {
  const bounds = STATS_BUCKET_BOUNDS_MS;
  // NOTE: a linear scan of 17 numbers; most timings land in the first few buckets.
  for (let i = 0; i < bounds.length; i++) if (ms <= bounds[i]) return i;
  return bounds.length;
}

/**
 * The `q` quantile (0..1) of a bucket histogram, interpolated linearly inside its bucket (as
 * Prometheus' histogram_quantile does); null when it holds nothing. A quantile in the overflow
 * bucket is reported as the last bound (the histogram knows no more).
 */
export function quantileOf(buckets: readonly number[], q: number): number | null {
  const total = buckets.reduce((sum, n) => sum + n, 0);
  if (total === 0) return null;
  const rank = q * total;
  let seen = 0;
  for (let i = 0; i < buckets.length; i++) {
    const n = buckets[i];
    if (n === 0 || seen + n < rank) {
      seen += n;
      continue;
    }
    const bounds = STATS_BUCKET_BOUNDS_MS;
    if (i === bounds.length) return bounds[bounds.length - 1];
    const lower = i === 0 ? 0 : bounds[i - 1];
    return lower + (bounds[i] - lower) * ((rank - seen) / n);
  }
  return STATS_BUCKET_BOUNDS_MS[STATS_BUCKET_BOUNDS_MS.length - 1];
}
