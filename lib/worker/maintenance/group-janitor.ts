import { LimitsRepository } from '../../database/limits.repository';
import type { JobRepository } from '../../database/job.repository';
import { PeriodicTask } from './periodic-task';

const DELETE_BATCH = 1000;
export const GROUP_JANITOR_INTERVAL_MS = 600_000;
/**
 * Group rows (rate windows, RateLimitedError blocks) untouched for this long, whose block ended as
 * long ago, are forgotten. NOTE: a day, far longer than any sensible group rate window: a row is
 * only ever needed for its window or its block.
 */
export const STALE_GROUP_AGE_MS = 86_400_000;

/**
 * Deletes the limits' group rows that no longer matter (see `deleteStaleGroups`), in batches, every
 * ten minutes, so the groups table holds only the groups rate limited lately, however many groups
 * come and go. Safe on every node at once (rows are taken with SKIP LOCKED).
 */
export class GroupJanitor extends PeriodicTask {
  constructor(repository: JobRepository, intervalMs = GROUP_JANITOR_INTERVAL_MS) {
    const limits = new LimitsRepository(repository);
    super('Group janitor', intervalMs, async () => {
      while ((await limits.deleteStaleGroups(STALE_GROUP_AGE_MS, DELETE_BATCH)) === DELETE_BATCH) {
        // keep going until a partial batch says we are done
      }
    });
  }
}
