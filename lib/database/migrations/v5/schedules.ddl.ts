import type { TableNaming } from '../../table-naming';

/**
 * Schema step 5, the schedules part (see ./README.md): the schedule table, one row per cron
 * schedule (declared with `@Schedule` or at runtime), and the two columns that tie a job to the
 * slot it was enqueued for.
 */
export const schedulesDdl = {
  up: (n: TableNaming): string[] => [
    `CREATE TABLE IF NOT EXISTS ${n.schedulesQualified} (
      "key" text PRIMARY KEY,
      "queue" text NOT NULL,
      "name" text NOT NULL,
      "cron" text NOT NULL,
      "tz" text NOT NULL DEFAULT 'UTC',
      "data" jsonb NOT NULL DEFAULT 'null',
      "options" jsonb NOT NULL DEFAULT '{}',
      "catch_up" text NOT NULL DEFAULT 'latest',
      "catch_up_limit" integer NOT NULL DEFAULT 100,
      "overlap" text NOT NULL DEFAULT 'allow',
      "source" text NOT NULL DEFAULT 'runtime',
      "declared_by" text,
      "paused" boolean NOT NULL DEFAULT false,
      "next_run_at" timestamptz NOT NULL,
      "last_run_at" timestamptz,
      "last_job_id" bigint,
      "created_at" timestamptz NOT NULL DEFAULT now(),
      "updated_at" timestamptz NOT NULL DEFAULT now(),
      CONSTRAINT "${n.prefix}_schedules_check" CHECK ("catch_up" IN ('none', 'latest', 'all') AND "overlap" IN ('allow', 'skip') AND "source" IN ('code', 'runtime'))
    )`,
    // NOTE: the enqueuers' one question, "which schedules are due, and when is the next one": a range
    // scan of this index from its start, however many schedules there are.
    `CREATE INDEX IF NOT EXISTS "${n.prefix}_schedules_due_idx" ON ${n.schedulesQualified} ("next_run_at") WHERE NOT "paused"`,
    `ALTER TABLE ${n.qualified} ADD COLUMN IF NOT EXISTS "scheduled_for" timestamptz, ADD COLUMN IF NOT EXISTS "schedule_key" text`,
    // NOTE: exactly one job per slot, whichever process (or app version) enqueues it. Plain jobs
    // leave schedule_key NULL and never enter this index.
    `CREATE UNIQUE INDEX IF NOT EXISTS "${n.prefix}_schedule_slot_idx" ON ${n.qualified} ("schedule_key", "scheduled_for") WHERE "schedule_key" IS NOT NULL`,
  ],
  down: (n: TableNaming): string[] => [
    `DROP INDEX IF EXISTS "${n.schema}"."${n.prefix}_schedule_slot_idx"`,
    `ALTER TABLE ${n.qualified} DROP COLUMN IF EXISTS "scheduled_for", DROP COLUMN IF EXISTS "schedule_key"`,
    `DROP TABLE IF EXISTS ${n.schedulesQualified}`,
  ],
};
