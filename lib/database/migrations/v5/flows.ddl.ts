import type { TableNaming } from '../../table-naming';

/** Schema step 5, the flows part (see ./README.md). */
export const flowsDdl = {
  up: (n: TableNaming): string[] => [
    // --- job events (issue 15 part B): progress and logs ---
    // NOTE: the last value of `job.progress()`; read by getJob, never by the claim.
    `ALTER TABLE ${n.qualified} ADD COLUMN IF NOT EXISTS "progress" jsonb`,
    // NOTE: `job.log()` entries live off the hot job row: a job row that grew with every log line
    // would make every later update of it (heartbeat, completion) copy the whole log.
    `CREATE TABLE IF NOT EXISTS ${n.logsQualified} (
      "id" bigserial PRIMARY KEY,
      "job_id" bigint NOT NULL,
      "at" timestamptz NOT NULL,
      "message" text NOT NULL,
      "truncated" boolean NOT NULL DEFAULT false
    )`,
    `CREATE INDEX IF NOT EXISTS "${n.prefix}_logs_job_idx" ON ${n.logsQualified} ("job_id", "id")`,
  ],
  down: (n: TableNaming): string[] => [
    // --- job events (issue 15 part B) ---
    `DROP TABLE IF EXISTS ${n.logsQualified}`,
    `ALTER TABLE ${n.qualified} DROP COLUMN IF EXISTS "progress"`,
  ],
};
