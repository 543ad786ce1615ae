import type { TableNaming } from '../../table-naming';

/**
 * Schema step 5, the job management API's part (see ./README.md).
 *
 * NOTE: one partial index, of the failed and cancelled jobs by queue in id order: the dead-letter
 * view (`listJobs({ queue, state: 'failed' })`, `retryJobs({ queue })`) finds them without walking
 * the queue's completed jobs, however many. It costs nothing on the hot path: a job enters it only
 * when it fails for good or is cancelled. No general index on (queue, state, id) or GIN index on
 * data: each costs every insert and every state change (measured on 200,000-row inserts: about
 * +50 % and +70 % of the insert time), paid by every user for a dashboard query; see
 * docs/job-admin.md for the plans each listing uses, and the opt-in indexes for big tables.
 */
export const adminDdl = {
  up: (n: TableNaming): string[] => [
    `CREATE INDEX IF NOT EXISTS "${n.prefix}_dead_idx" ON ${n.qualified} ("queue", "id") WHERE "state" IN ('failed', 'cancelled')`,
  ],
  down: (n: TableNaming): string[] => [`DROP INDEX IF EXISTS "${n.schema}"."${n.prefix}_dead_idx"`],
};
