import type { TableNaming } from '../../table-naming';

/**
 * Schema step 5, the observability part (see ./README.md): the worker registry and the per-minute
 * rollups (side tables), and the job table's trace context column.
 */
export const observabilityDdl = {
  up: (n: TableNaming): string[] => [
    // NOTE: one row per live worker process, upserted by its own beat; `expires_at` is set by the
    // worker itself (a few of its lease lengths ahead), so workers with different leases coexist.
    `CREATE TABLE IF NOT EXISTS ${n.workersQualified} (
        "id" text PRIMARY KEY,
        "host" text NOT NULL,
        "pid" integer NOT NULL,
        "queues" jsonb NOT NULL DEFAULT '{}',
        "running" integer NOT NULL DEFAULT 0,
        "started_at" timestamptz NOT NULL DEFAULT now(),
        "heartbeat_at" timestamptz NOT NULL DEFAULT now(),
        "expires_at" timestamptz NOT NULL
      )`,
    // NOTE: one row per queue, job name and minute; workers add to it (never overwrite), so rows
    // from many processes sum up. Histograms are bucket counts over fixed bounds (see stats-buckets.ts).
    `CREATE TABLE IF NOT EXISTS ${n.statsQualified} (
        "queue" text NOT NULL,
        "name" text NOT NULL,
        "minute" timestamptz NOT NULL,
        "completed" integer NOT NULL DEFAULT 0,
        "failed" integer NOT NULL DEFAULT 0,
        "retried" integer NOT NULL DEFAULT 0,
        "rescued" integer NOT NULL DEFAULT 0,
        "wait_count" integer NOT NULL DEFAULT 0,
        "wait_sum_ms" double precision NOT NULL DEFAULT 0,
        "wait_buckets" integer[] NOT NULL,
        "run_count" integer NOT NULL DEFAULT 0,
        "run_sum_ms" double precision NOT NULL DEFAULT 0,
        "run_buckets" integer[] NOT NULL,
        PRIMARY KEY ("queue", "name", "minute")
      )`,
    `CREATE INDEX IF NOT EXISTS "${n.prefix}_stats_minute_idx" ON ${n.statsQualified} ("minute")`,
    // NOTE: the W3C trace context of the producer's span ({ traceparent, tracestate }), written only
    // by an add() made inside a recording span with tracing on: NULL (no storage) for every other job.
    `ALTER TABLE ${n.qualified} ADD COLUMN IF NOT EXISTS "trace_context" jsonb`,
  ],
  down: (n: TableNaming): string[] => [
    `ALTER TABLE ${n.qualified} DROP COLUMN IF EXISTS "trace_context"`,
    `DROP TABLE IF EXISTS ${n.statsQualified}`,
    `DROP TABLE IF EXISTS ${n.workersQualified}`,
  ],
};
