/** A live worker process, as the worker registry knows it (`QueueService.getWorkers()`). */
export interface WorkerInfo {
  /** The worker's id: `host:pid:random`, as in the `lockedBy` of the jobs it runs. */
  id: string;
  host: string;
  pid: number;
  /** The queues it runs, with the concurrency of each. */
  queues: Record<string, number>;
  /** Jobs it was running at its last heartbeat. */
  running: number;
  startedAt: Date;
  lastHeartbeatAt: Date;
  /** When it drops out of the list unless it beats again (a killed worker: a few lease lengths after its last beat). */
  expiresAt: Date;
}

/** A summary of one kind of timing within a rollup: a fixed-bucket histogram (see `STATS_BUCKET_BOUNDS_MS`). */
export interface TimingSummary {
  count: number;
  sumMs: number;
  /** Median (ms), interpolated inside its bucket; null when `count` is 0. */
  p50Ms: number | null;
  /** 95th percentile (ms), interpolated inside its bucket; null when `count` is 0. */
  p95Ms: number | null;
  /** Counts per bucket of `STATS_BUCKET_BOUNDS_MS` (inclusive upper bounds), the last one for longer ones. */
  buckets: number[];
}

/** What one queue's jobs of one name did in one minute, across every worker process (`QueueService.getStats()`). */
export interface QueueStatsRow {
  queue: string;
  name: string;
  /** The start of the minute (UTC). */
  minute: Date;
  /** Attempts that completed their job. */
  completed: number;
  /** Jobs that failed for good (attempts spent or not retryable, including by a rescue). */
  failed: number;
  /** Attempts that failed and were scheduled to run again. */
  retried: number;
  /** Jobs put back (or failed) because their worker's lease lapsed. */
  rescued: number;
  /** Due (`runAt`) to started, per attempt run by a worker that ended with an outcome written (completed, failed, retried). */
  waitTime: TimingSummary;
  /** Started to outcome written, per attempt that ended (completed, failed, retried). */
  runTime: TimingSummary;
}

/** Filter of `QueueService.getStats()`. */
export interface QueueStatsFilter {
  /** Only this queue. Default: every queue. */
  queue?: string;
  /** From this minute on (inclusive). Default: an hour before `until`. */
  since?: Date;
  /** Before this time (exclusive). Default: now. */
  until?: Date;
}

/** Options of the per-minute rollups (`QueueModule.forRoot({ stats })`). */
export interface StatsOptions {
  /** How long rollups are kept (ms); older minutes are deleted by the workers about once a minute. Default 14 days. */
  retentionMs?: number;
  /** How often a worker writes what it accumulated (ms): one statement per process per interval at most. Default 5000. */
  flushIntervalMs?: number;
}

/**
 * Options of the Prometheus metrics (`QueueModule.forRoot({ metrics })`); needs `prom-client`
 * installed (an optional peer dependency, loaded only when this is set).
 */
export interface MetricsOptions {
  /** The prom-client `Registry` to register on. Default: prom-client's global `register`. */
  registry?: unknown;
  /** Prefix of every metric name (`[a-zA-Z_:][a-zA-Z0-9_:]*`). Default `nestjs_pg_queue`. */
  prefix?: string;
  /**
   * How often the job-count and oldest-pending gauges are refreshed in the background (ms, at
   * least 1000); the first refresh comes at a random moment within the first interval after boot
   * (until then those gauges have no values). Default 5000.
   */
  refreshIntervalMs?: number;
}

/** Options of the health check (`QueueModule.forRoot({ health })`, read by `QueueHealthIndicator`). */
export interface HealthOptions {
  /** How long the database check may take before the check answers down (ms). Default 1000. */
  timeoutMs?: number;
  /**
   * Down when a queue's oldest due pending job has waited longer than this (ms): one bound for
   * every queue, or a bound per queue name (queues not listed are not checked). Default: not checked.
   */
  maxPendingAgeMs?: number | Record<string, number>;
}

/** What the health check found (`QueueHealthService.check()`). */
export interface QueueHealthReport {
  /** Every check below passed. */
  healthy: boolean;
  database: { up: boolean; responseTimeMs: number; error?: string };
  /** This process's worker; `listening` is null when it has no LISTEN connection to keep (`listen: false`, or no processor here). */
  worker: { enabled: boolean; running: boolean; listening: boolean | null };
  /** The queues with a `maxPendingAgeMs` bound: the age of their oldest due pending job. */
  queues: Record<string, { oldestPendingAgeMs: number; maxPendingAgeMs: number; up: boolean }>;
}
