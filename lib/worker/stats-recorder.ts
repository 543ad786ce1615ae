import { Logger } from '@nestjs/common';
import type { RollupDelta, StatsRepository } from '../database/stats.repository';
import type { JobLifecycle, JobLifecycleEvent } from './job-lifecycle';
import { PeriodicTask } from './maintenance/periodic-task';
import { STATS_BUCKET_COUNT, bucketOf } from '../observability/stats-buckets';
import { AttemptTimer } from '../observability/attempt-timer';

/**
 * Most rollups held in memory while writes fail (a long outage); past it the newest events are
 * dropped (and that said once) rather than memory growing without bound.
 */
export const MAX_PENDING_ROLLUPS = 10_000;

const MINUTE_MS = 60_000;

/**
 * Accumulates this process's job outcomes and timings per queue, job name and minute, from the
 * lifecycle hub (so after each write is durable), and writes them at most once per flush interval,
 * in one statement that adds them to what other processes wrote. Nothing on the hot path touches
 * the database. A failed write keeps its rollups for the next one. Timings: see AttemptTimer.
 */
export class StatsRecorder extends PeriodicTask {
  private pending = new Map<string, RollupDelta>();
  private readonly timings = new AttemptTimer();
  private unsubscribe?: () => void;
  private dropping = false;
  private readonly log = new Logger('QueueStats');

  constructor(
    private readonly stats: StatsRepository,
    private readonly lifecycle: JobLifecycle,
    flushIntervalMs: number,
  ) {
    super('Stats writer', flushIntervalMs, () => this.flush());
  }

  override start(): void {
    this.unsubscribe ??= this.lifecycle.subscribe((event) => this.record(event));
    super.start();
  }

  /** Stops listening and writes what is left (bounded by the statement timeout). */
  override async stop(): Promise<void> {
    this.unsubscribe?.();
    this.unsubscribe = undefined;
    await super.stop();
    await this.runOnce();
  }

  private record(event: JobLifecycleEvent): void {
    switch (event.type) {
      case 'active': {
        const wait = this.timings.started(event.job, event.at);
        const row = this.rollup(event.job, event.at);
        if (!row) return;
        row.wait_count++;
        row.wait_sum_ms += wait;
        row.wait_buckets[bucketOf(wait)]++;
        return;
      }
      case 'completed':
      case 'failed':
      case 'retrying': {
        const row = this.rollup(event.job, event.at);
        if (!row) return;
        if (event.type === 'completed') row.completed++;
        else if (event.type === 'failed') row.failed++;
        else row.retried++;
        const run = this.timings.ended(event.job, event.at);
        row.run_count++;
        row.run_sum_ms += run;
        row.run_buckets[bucketOf(run)]++;
        return;
      }
      case 'rescued': {
        const row = this.rollup(event.job, event.at);
        if (!row) return;
        row.rescued++;
        if (event.job.state === 'failed') row.failed++;
        return;
      }
      default:
        // requeued (snooze, shutdown hand-back): not an outcome.
        return;
    }
  }

  private rollup(job: { queue: string; name: string }, at: number): RollupDelta | undefined {
    const minute = at - (at % MINUTE_MS);
    const key = `${job.queue}\u0000${job.name}\u0000${minute}`;
    let row = this.pending.get(key);
    if (row) return row;
    if (this.pending.size >= MAX_PENDING_ROLLUPS) {
      if (!this.dropping) this.log.warn(`${MAX_PENDING_ROLLUPS} rollups wait to be written (is the database down?): newer ones are dropped until a write succeeds`);
      this.dropping = true;
      return undefined;
    }
    row = {
      queue: job.queue,
      name: job.name,
      minute,
      completed: 0,
      failed: 0,
      retried: 0,
      rescued: 0,
      wait_count: 0,
      wait_sum_ms: 0,
      wait_buckets: new Array<number>(STATS_BUCKET_COUNT).fill(0),
      run_count: 0,
      run_sum_ms: 0,
      run_buckets: new Array<number>(STATS_BUCKET_COUNT).fill(0),
    };
    this.pending.set(key, row);
    return row;
  }

  private async flush(): Promise<void> {
    if (this.pending.size === 0) return;
    const batch = this.pending;
    this.pending = new Map();
    try {
      await this.stats.add([...batch.values()]);
      this.dropping = false;
    } catch (error) {
      this.mergeBack(batch);
      throw error;
    }
  }

  /** Puts a batch that could not be written back in front of what accumulated since. */
  private mergeBack(batch: Map<string, RollupDelta>): void {
    for (const [key, row] of this.pending) {
      const earlier = batch.get(key);
      if (!earlier) {
        batch.set(key, row);
        continue;
      }
      for (const field of ['completed', 'failed', 'retried', 'rescued', 'wait_count', 'wait_sum_ms', 'run_count', 'run_sum_ms'] as const) earlier[field] += row[field];
      for (let i = 0; i < STATS_BUCKET_COUNT; i++) {
        earlier.wait_buckets[i] += row.wait_buckets[i];
        earlier.run_buckets[i] += row.run_buckets[i];
      }
    }
    this.pending = batch;
  }
}
