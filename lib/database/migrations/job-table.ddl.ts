import type { TableNaming } from '../table-naming';
import { adminDdl } from './v5/admin.ddl';
import { flowsDdl } from './v5/flows.ddl';
import { limitsDdl } from './v5/limits.ddl';
import { observabilityDdl } from './v5/observability.ddl';
import { schedulesDdl } from './v5/schedules.ddl';

/**
 * The job table's schema, as numbered, idempotent steps. A step is never edited once released: a
 * change is a new step, so every database can be brought up to date from any earlier version.
 * Steps run in order inside one transaction, serialised across nodes with an advisory lock.
 */
export interface SchemaStep {
  version: number;
  /**
   * The timestamp in the name of this step's TypeORM migration class (see `createQueueMigrations`).
   * Steps 1 and 2 were released together as one migration class, and have none of their own.
   */
  migrationTimestamp?: number;
  up: (n: TableNaming) => string[];
  down: (n: TableNaming) => string[];
}

/**
 * When a job holds its unique key (the predicate of the unique index; `ON CONFLICT` names it
 * exactly). See schema step 4.
 */
export const UNIQUE_HELD = `"unique_key" IS NOT NULL AND ("unique_hold" = 'window'
  OR ("unique_hold" = 'finish' AND "state" NOT IN ('completed', 'failed', 'cancelled'))
  OR ("unique_hold" = 'start' AND "state" = 'pending' AND "claims" = 0))`;

export const SCHEMA_STEPS: readonly SchemaStep[] = [
  {
    version: 1,
    up: (n) => [
      `CREATE SCHEMA IF NOT EXISTS "${n.schema}"`,
      `CREATE TABLE IF NOT EXISTS ${n.qualified} (
        "id" bigserial PRIMARY KEY,
        "queue" text NOT NULL,
        "name" text NOT NULL,
        "data" jsonb NOT NULL DEFAULT '{}',
        "state" text NOT NULL DEFAULT 'pending',
        "priority" integer NOT NULL DEFAULT 0,
        "run_at" timestamptz NOT NULL DEFAULT now(),
        "attempts" integer NOT NULL DEFAULT 0,
        "claims" integer NOT NULL DEFAULT 0,
        "max_attempts" integer,
        "backoff" jsonb,
        "timeout_ms" integer,
        "result" jsonb,
        "last_error" jsonb,
        "locked_by" text,
        "locked_until" timestamptz,
        "created_at" timestamptz NOT NULL DEFAULT now(),
        "started_at" timestamptz,
        "finished_at" timestamptz,
        CONSTRAINT "${n.prefix}_state_check" CHECK ("state" IN ('pending', 'active', 'completed', 'failed', 'cancelled'))
      )`,
      // NOTE: the claim index holds pending jobs only, in claim order, so finished rows (however
      // many) never slow a claim down.
      `CREATE INDEX IF NOT EXISTS "${n.prefix}_claim_idx" ON ${n.qualified} ("queue", "priority" DESC, "run_at", "id") WHERE "state" = 'pending'`,
      // The rescuer looks for active jobs whose lease lapsed.
      `CREATE INDEX IF NOT EXISTS "${n.prefix}_lease_idx" ON ${n.qualified} ("locked_until") WHERE "state" = 'active'`,
      // Retention deletes finished jobs by age.
      `CREATE INDEX IF NOT EXISTS "${n.prefix}_finished_idx" ON ${n.qualified} ("finished_at") WHERE "state" IN ('completed', 'failed', 'cancelled')`,
      // NOTE: every job is inserted once and updated two or three times, so dead tuples pile up
      // fast; vacuum at 2 % churn instead of the default 20 % keeps the table and indexes small.
      `ALTER TABLE ${n.qualified} SET (autovacuum_vacuum_scale_factor = 0.02, autovacuum_analyze_scale_factor = 0.02, autovacuum_vacuum_insert_scale_factor = 0.05)`,
    ],
    down: (n) => [`DROP TABLE IF EXISTS ${n.qualified}`],
  },
  {
    version: 2,
    // NOTE: the claim index keys on a hash of the queue name instead of the text: comparing an
    // int4 is cheaper than comparing collated text, and every insert descends this index. Measured
    // on COPY into the table (9 interleaved repetitions): 0.91 -> 1.03 of the raw reference's
    // INSERT. Claims filter on `queue` as well, so two names with the same hash stay apart.
    // Building it takes a lock that blocks inserts for as long as PostgreSQL scans the table.
    up: (n) => [
      `CREATE INDEX IF NOT EXISTS "${n.prefix}_claim_hash_idx" ON ${n.qualified} (hashtext("queue"), "priority" DESC, "run_at", "id") WHERE "state" = 'pending'`,
      `DROP INDEX IF EXISTS "${n.schema}"."${n.prefix}_claim_idx"`,
    ],
    down: (n) => [
      `CREATE INDEX IF NOT EXISTS "${n.prefix}_claim_idx" ON ${n.qualified} ("queue", "priority" DESC, "run_at", "id") WHERE "state" = 'pending'`,
      `DROP INDEX IF EXISTS "${n.schema}"."${n.prefix}_claim_hash_idx"`,
    ],
  },
  {
    version: 3,
    migrationTimestamp: 1764633600000,
    // NOTE: until this step, a table name longer than 40 characters was cut to 40 for its index and
    // constraint names, so two such tables of one schema could share them and the second silently
    // got no indexes (CREATE INDEX IF NOT EXISTS). Their names now carry a digest of the table name
    // (see `createTableNaming`); this step moves a table's own objects to the new names and creates
    // any index it lacks. Tables of 40 characters or fewer are untouched.
    up: (n) => {
      if (!n.legacyPrefix) return [];
      const L = n.legacyPrefix;
      const tableLiteral = `'${n.qualified}'::regclass`;
      return [
        `DO $pgq$
        DECLARE
          legacy text;
          target text;
        BEGIN
          IF EXISTS (SELECT 1 FROM pg_constraint WHERE conrelid = ${tableLiteral} AND conname = '${L}_state_check') THEN
            ALTER TABLE ${n.qualified} RENAME CONSTRAINT "${L}_state_check" TO "${n.prefix}_state_check";
          END IF;
          -- Only this table's indexes (pg_index.indrelid): the legacy names may belong to another table.
          FOR legacy IN
            SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
            WHERE i.indrelid = ${tableLiteral}
              AND c.relname IN ('${L}_claim_hash_idx', '${L}_lease_idx', '${L}_finished_idx', '${L}_claim_idx')
          LOOP
            target := '${n.prefix}' || substr(legacy, ${L.length + 1});
            IF legacy = '${L}_claim_idx' OR to_regclass(format('%I.%I', '${n.schema}', target)) IS NOT NULL THEN
              EXECUTE format('DROP INDEX %I.%I', '${n.schema}', legacy);
            ELSE
              EXECUTE format('ALTER INDEX %I.%I RENAME TO %I', '${n.schema}', legacy, target);
            END IF;
          END LOOP;
        END $pgq$`,
        `CREATE INDEX IF NOT EXISTS "${n.prefix}_claim_hash_idx" ON ${n.qualified} (hashtext("queue"), "priority" DESC, "run_at", "id") WHERE "state" = 'pending'`,
        `CREATE INDEX IF NOT EXISTS "${n.prefix}_lease_idx" ON ${n.qualified} ("locked_until") WHERE "state" = 'active'`,
        `CREATE INDEX IF NOT EXISTS "${n.prefix}_finished_idx" ON ${n.qualified} ("finished_at") WHERE "state" IN ('completed', 'failed', 'cancelled')`,
      ];
    },
    // The new names are kept: the earlier steps' `down` drops the table, whatever its index names.
    down: () => [],
  },
  {
    version: 4,
    migrationTimestamp: 1764720000000,
    // NOTE: unique jobs and the queue registry (pause now; the limits of a later step will live
    // there too). A job holds its unique key while it sits in the unique index, and the index's
    // predicate says when that is, so no statement that moves a job between states has to release a
    // key: `finish` holds it until the job is completed, failed or cancelled; `start` while it waits
    // for its first claim (`claims = 0`: a retry, snooze or hand-back does not take it again, so a
    // retry can never collide with the job added meanwhile); `window` holds it whatever the state,
    // the window's number (`unique_slot`) being part of the key. Plain jobs leave `unique_key` NULL
    // and never touch the index.
    up: (n) => [
      `ALTER TABLE ${n.qualified} ADD COLUMN IF NOT EXISTS "unique_key" text, ADD COLUMN IF NOT EXISTS "unique_hold" text,
        ADD COLUMN IF NOT EXISTS "unique_slot" bigint, ADD COLUMN IF NOT EXISTS "group_key" text`,
      `CREATE UNIQUE INDEX IF NOT EXISTS "${n.prefix}_unique_idx" ON ${n.qualified} ("queue", "unique_key", COALESCE("unique_slot", 0)) WHERE ${UNIQUE_HELD}`,
      `CREATE TABLE IF NOT EXISTS ${n.queuesQualified} (
        "name" text PRIMARY KEY,
        "paused" boolean NOT NULL DEFAULT false,
        "paused_at" timestamptz,
        "declared" jsonb NOT NULL DEFAULT '{}',
        "overrides" jsonb NOT NULL DEFAULT '{}',
        "rate_limited_until" timestamptz,
        "counts" jsonb,
        "counts_at" timestamptz,
        "created_at" timestamptz NOT NULL DEFAULT now(),
        "updated_at" timestamptz NOT NULL DEFAULT now()
      )`,
    ],
    down: (n) => [
      `DROP TABLE IF EXISTS ${n.queuesQualified}`,
      `DROP INDEX IF EXISTS "${n.schema}"."${n.prefix}_unique_idx"`,
      `ALTER TABLE ${n.qualified} DROP COLUMN IF EXISTS "unique_key", DROP COLUMN IF EXISTS "unique_hold", DROP COLUMN IF EXISTS "unique_slot", DROP COLUMN IF EXISTS "group_key"`,
    ],
  },
  {
    version: 5,
    migrationTimestamp: 1764806400000,
    // NOTE: four features' schema in one step (see ./v5/README.md), each part in a file of its own.
    up: (n) => [
      ...limitsDdl.up(n), ...schedulesDdl.up(n), ...flowsDdl.up(n), ...observabilityDdl.up(n),
      ...adminDdl.up(n),
    ],
    down: (n) => [
      ...adminDdl.down(n),
      ...observabilityDdl.down(n), ...flowsDdl.down(n), ...schedulesDdl.down(n), ...limitsDdl.down(n),
    ],
  },
];

export const LATEST_SCHEMA_VERSION = SCHEMA_STEPS[SCHEMA_STEPS.length - 1].version;

/**
 * The schema version is recorded as the comment of the state check constraint (TypeORM's schema
 * diff ignores constraint comments, but would flag a table comment the entity cannot declare).
 * It is read before taking any lock.
 */
export function schemaVersionComment(version: number): string {
  return `nestjs-pg-queue job table, schema version ${version}`;
}

export function writeSchemaVersion(n: TableNaming, version: number): string {
  return `COMMENT ON CONSTRAINT "${n.prefix}_state_check" ON ${n.qualified} IS '${schemaVersionComment(version)}'`;
}

/**
 * The names the version-carrying constraint may have: its own, and before schema step 3 the one cut
 * from a long table name (see `SchemaStep` 3).
 */
export function schemaVersionConstraints(n: TableNaming): string[] {
  return n.legacyPrefix ? [`${n.prefix}_state_check`, `${n.legacyPrefix}_state_check`] : [`${n.prefix}_state_check`];
}

/** Reads the version comment: $1 the qualified table, $2 the constraint names it may have. */
export const readSchemaVersionSql = `SELECT obj_description(oid, 'pg_constraint') AS comment FROM pg_constraint WHERE conrelid = to_regclass($1) AND conname = ANY($2::text[])`;

export function parseSchemaVersion(comment: string | null): number {
  const match = comment && /schema version (\d+)$/.exec(comment);
  return match ? Number(match[1]) : 0;
}
