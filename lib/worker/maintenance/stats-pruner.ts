import type { StatsRepository } from '../../database/stats.repository';
import { PeriodicTask } from './periodic-task';
import { RETENTION_INTERVAL_MS } from './retention-cleaner';

/** Deletes the per-minute rollups older than their retention (`stats.retentionMs`), on the retention cleaner's schedule. */
export class StatsPruner extends PeriodicTask {
  constructor(stats: StatsRepository, retentionMs: number, intervalMs = RETENTION_INTERVAL_MS) {
    super('Stats retention', intervalMs, () => stats.prune(retentionMs));
  }
}
