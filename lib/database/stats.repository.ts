import type { JobRepository } from './job.repository';
import { buildStatsStatements, type StatsStatements } from './sql/stats.statements';
import { quantileOf } from '../observability/stats-buckets';
import type { QueueStatsRow, TimingSummary } from '../interfaces/observability.interface';

/** One rollup as a worker accumulates and writes it: counts and bucket counts of one queue, name and minute. */
export interface RollupDelta {
  queue: string;
  name: string;
  /** Start of the minute, epoch ms. */
  minute: number;
  completed: number;
  failed: number;
  retried: number;
  rescued: number;
  wait_count: number;
  wait_sum_ms: number;
  wait_buckets: number[];
  run_count: number;
  run_sum_ms: number;
  run_buckets: number[];
}

/** The per-minute rollups (`<table>_stats`). */
export class StatsRepository {
  private readonly statements: StatsStatements;

  constructor(private readonly jobs: JobRepository) {
    this.statements = buildStatsStatements(jobs.naming);
  }

  /** Adds `rows` to the table (summed with what is there), in one statement. */
  async add(rows: RollupDelta[]): Promise<void> {
    if (rows.length > 0) await this.jobs.runWorkerStatement('statsFlush', this.statements.add, [JSON.stringify(rows)]);
  }

  /** Deletes the rollups older than `ageMs`. */
  async prune(ageMs: number): Promise<void> {
    await this.jobs.runWorkerStatement('retention', this.statements.prune, [ageMs]);
  }

  async read(queue: string | null, sinceMs: number, untilMs: number): Promise<QueueStatsRow[]> {
    const rows = await this.jobs.runStatement<RollupDelta>('getStats', this.statements.read, [queue, sinceMs, untilMs]);
    return rows.map((r) => ({
      queue: r.queue,
      name: r.name,
      minute: new Date(Number(r.minute)),
      completed: r.completed,
      failed: r.failed,
      retried: r.retried,
      rescued: r.rescued,
      waitTime: summary(r.wait_count, r.wait_sum_ms, r.wait_buckets),
      runTime: summary(r.run_count, r.run_sum_ms, r.run_buckets),
    }));
  }
}

function summary(count: number, sumMs: number, buckets: number[]): TimingSummary {
  return { count, sumMs, p50Ms: quantileOf(buckets, 0.5), p95Ms: quantileOf(buckets, 0.95), buckets };
}
