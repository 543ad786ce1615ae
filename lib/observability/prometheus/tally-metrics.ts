import type { OutcomeCounts, OutcomeTally, TimingTally } from '../outcome-tally';
import { STATS_BUCKET_BOUNDS_MS } from '../stats-buckets';

/** A metric value as prom-client's registries read them from `get()`. */
interface MetricValue {
  value: number;
  labels: Record<string, string | number>;
  metricName?: string;
}

/**
 * A metric whose values are read from the OutcomeTally when the registry is scraped: what
 * prom-client's `Registry` needs of a metric (`name`, `get()`, `reset()`), so the hot path only
 * bumps the tally's numbers and prom-client does no label hashing per job.
 */
export interface TallyMetric {
  readonly name: string;
  readonly help: string;
  readonly type: 'counter' | 'histogram';
  readonly aggregator: 'sum';
  get(): Promise<{ name: string; help: string; type: 'counter' | 'histogram'; values: MetricValue[]; aggregator: 'sum' }>;
  /** NOTE: `Registry.resetMetrics()` calls it; these are process totals, which only the process's end resets. */
  reset(): void;
}

function tallyMetric(name: string, help: string, type: 'counter' | 'histogram', values: () => MetricValue[]): TallyMetric {
  return {
    name,
    help,
    type,
    aggregator: 'sum',
    get: async () => ({ name, help, type, values: values(), aggregator: 'sum' }),
    reset: () => undefined,
  };
}

const LE = [...STATS_BUCKET_BOUNDS_MS.map((ms) => ms / 1000), '+Inf'] as const;

function histogramValues(name: string, labels: { queue: string; name: string }, t: TimingTally, into: MetricValue[]): void {
  let cumulative = 0;
  for (let i = 0; i < LE.length; i++) {
    cumulative += t.buckets[i];
    into.push({ value: cumulative, labels: { ...labels, le: LE[i] }, metricName: `${name}_bucket` });
  }
  into.push({ value: t.sumMs / 1000, labels, metricName: `${name}_sum` });
  into.push({ value: t.count, labels, metricName: `${name}_count` });
}

/** The counters and histograms of the Prometheus export, by `queue` and `name`, read from `tally`. */
export function createTallyMetrics(prefix: string, tally: OutcomeTally): TallyMetric[] {
  const counter = (what: keyof Pick<OutcomeCounts, 'completed' | 'failed' | 'retried' | 'rescued'>, help: string) =>
    tallyMetric(`${prefix}_jobs_${what}_total`, help, 'counter', () =>
      tally.allTotals().map(({ queue, name, counts }) => ({ value: counts[what], labels: { queue, name } })),
    );
  const histogram = (what: 'wait' | 'run', metric: string, help: string) =>
    tallyMetric(metric, help, 'histogram', () => {
      const values: MetricValue[] = [];
      for (const { queue, name, counts } of tally.allTotals()) histogramValues(metric, { queue, name }, counts[what], values);
      return values;
    });
  return [
    counter('completed', 'Attempts that completed their job, by queue and job name.'),
    counter('failed', 'Jobs that failed for good (attempts spent, not retryable, or rescued with no attempt left), by queue and job name.'),
    counter('retried', 'Attempts that failed and were scheduled to run again, by queue and job name.'),
    counter('rescued', 'Jobs this process put back or failed because the lease of the worker running them lapsed, by queue and job name.'),
    histogram('wait', `${prefix}_job_wait_seconds`, 'Time from a job being due to its attempt starting.'),
    histogram('run', `${prefix}_job_run_seconds`, 'Time from an attempt starting to its outcome being written.'),
  ];
}
