import type { TableNaming } from '../../table-naming';

/**
 * Schema step 5, the job management API's part (see ./README.md).
 *
 * NOTE: two partial indexes of the failed and cancelled jobs (the dead letters): by queue in id
 * order, and in id order. The dead-letter views (`listJobs({ queue, state: 'failed' })`, a text
 * search among failed jobs) and bulk retries (`retryJobs({ state: 'failed' })`) find them without
 * walking the completed jobs, however many (by primary key, a search among 100,000 failed jobs of
 * 1,000,000 walks all 1,000,000; a bulk retry batch of 1,000 walks 10,000). They cost nothing on the
 * hot path: a job enters them only when it fails for good or is cancelled. No general index on (queue, state, id) or GIN index on
 * data: each costs every insert and every state change (measured on 200,000-row inserts: about
 * +50 % and +70 % of the insert time), paid by every user for a dashboard query; see
 * docs/job-admin.md for the plans each listing uses, and the opt-in indexes for big tables.
 */
export const adminDdl = {
  up: (n: TableNaming): string[] => [
    `CREATE INDEX IF NOT EXISTS "${n.prefix}_dead_idx" ON ${n.qualified} ("queue", "id") WHERE "state" IN ('failed', 'cancelled')`,
    `CREATE INDEX IF NOT EXISTS "${n.prefix}_dead_id_idx" ON ${n.qualified} ("id") WHERE "state" IN ('failed', 'cancelled')`,
  ],
  down: (n: TableNaming): string[] => [
    `DROP INDEX IF EXISTS "${n.schema}"."${n.prefix}_dead_id_idx"`,
    `DROP INDEX IF EXISTS "${n.schema}"."${n.prefix}_dead_idx"`,
  ],
};
