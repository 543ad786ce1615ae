import type { RollupDelta, StatsRepository } from '../database/stats.repository';
import type { MinuteCounts, OutcomeTally } from '../observability/outcome-tally';
import { addCounts } from '../observability/outcome-tally';
import { PeriodicTask } from './maintenance/periodic-task';
import { withTimeout } from './with-timeout';

/** How long the graceful stop waits for the last rollup write (the database may be gone). */
export const FINAL_STATS_WRITE_GRACE_MS = 1000;

/**
 * Writes this process's per-minute counts (kept by the OutcomeTally from the lifecycle hub, so
 * after each write is durable) at most once per flush interval, in one statement that adds them to
 * what other processes wrote. Nothing on the hot path touches the database. A failed write gives
 * its minutes back for the next one.
 */
export class StatsRecorder extends PeriodicTask {
  constructor(
    private readonly stats: StatsRepository,
    private readonly tally: OutcomeTally,
    flushIntervalMs: number,
  ) {
    super('Stats writer', flushIntervalMs, () => this.flush());
  }

  override start(): void {
    this.tally.enable({ minutes: true });
    super.start();
  }

  /**
   * Writes what is left, waiting for it at most FINAL_STATS_WRITE_GRACE_MS (then this process's
   * last few seconds of counts are lost: rollups are statistics, not records).
   */
  override async stop(): Promise<void> {
    await super.stop();
    await withTimeout(this.runOnce(), FINAL_STATS_WRITE_GRACE_MS);
  }

  private async flush(): Promise<void> {
    const taken = this.tally.takeMinutes();
    if (taken.length === 0) return;
    // NOTE: minutes given back by a failed write may meet newer counts of the same minute: one row
    // each (an upsert cannot touch one row twice).
    const merged = new Map<string, MinuteCounts>();
    for (const m of taken) {
      const key = `${m.queue}\u0000${m.name}\u0000${m.minute}`;
      const known = merged.get(key);
      if (known) addCounts(known.counts, m.counts);
      else merged.set(key, m);
    }
    const minutes = [...merged.values()];
    try {
      await this.stats.add(minutes.map(toDelta));
    } catch (error) {
      this.tally.putBack(minutes);
      throw error;
    }
  }
}

function toDelta({ queue, name, minute, counts: c }: MinuteCounts): RollupDelta {
  return {
    queue,
    name,
    minute,
    completed: c.completed,
    failed: c.failed,
    retried: c.retried,
    rescued: c.rescued,
    wait_count: c.wait.count,
    wait_sum_ms: c.wait.sumMs,
    wait_buckets: c.wait.buckets,
    run_count: c.run.count,
    run_sum_ms: c.run.sumMs,
    run_buckets: c.run.buckets,
  };
}
