import type { TableNaming } from '../table-naming';

/**
 * The statements of cron schedules (`<table>_schedules`, schema step 5) and of the jobs they
 * enqueue. Timestamps leave as epoch ms (see `epochMs` in the job statements); a change that moves
 * a schedule's next run tells every enqueuer on the table's channel (`t: 'schedule'`).
 */
export function buildScheduleStatements(n: TableNaming) {
  const S = n.schedulesQualified;
  const Q = n.qualified;
  const ms = (column: string, as: string) => `floor(date_part('epoch', ${column}) * 1000 + 0.0005) AS ${as}`;
  const scheduleColumns = (p = '') =>
    `${p}key, ${p}queue, ${p}name, ${p}cron, ${p}tz, ${p}data, ${p}options, ${p}catch_up, ${p}catch_up_limit, ${p}overlap, ${p}source,
     ${p}declared_by, ${p}paused, ${ms(`${p}next_run_at`, 'next_run_at')}, ${ms(`${p}last_run_at`, 'last_run_at')}, ${p}last_job_id::text AS last_job_id,
     ${ms(`${p}created_at`, 'created_at')}, ${ms(`${p}updated_at`, 'updated_at')}`;
  const notifySchedule = (at: string) =>
    `pg_notify('${n.channel}', json_build_object('t', 'schedule', 'in', GREATEST(0, ceil(extract(epoch FROM ${at} - now()) * 1000)))::text)`;
  // The job of slot `slot` of schedule row `s`: the schedule's data, and its job options as stored
  // (validated when the schedule was written).
  const slotJobColumns = `"queue", "name", "data", "priority", "run_at", "max_attempts", "backoff", "timeout_ms", "scheduled_for", "schedule_key"`;
  const slotJobValues = (slot: string) =>
    `s.queue, s.name, s.data, COALESCE((s.options->>'priority')::int, 0), ${slot}, (s.options->>'maxAttempts')::int,
     s.options->'backoff', (s.options->>'timeoutMs')::int, ${slot}, s.key`;
  const notifyJobs = (rows: string) =>
    `SELECT pg_notify('${n.channel}', json_build_object('t', 'job', 'q', queue, 'in', 0)::text) FROM ${rows} GROUP BY queue`;

  return {
    /** The database's clock (epoch ms): slots are computed against it, never against a host's. */
    now: `SELECT ${ms('now()', 'now')}`,

    /**
     * Create or change runtime schedule $1. An existing schedule keeps its next run unless its
     * expression or zone changed ($11: the next slot of the new ones). A schedule declared in code
     * is left alone (no row back).
     */
    upsertRuntime: `
      WITH up AS (
        INSERT INTO ${S} AS s ("key", "queue", "name", "cron", "tz", "data", "options", "catch_up", "catch_up_limit", "overlap", "source", "next_run_at")
        VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7::jsonb, $8, $9, $10, 'runtime', $11::timestamptz)
        ON CONFLICT ("key") DO UPDATE SET
          "queue" = EXCLUDED."queue", "name" = EXCLUDED."name", "cron" = EXCLUDED."cron", "tz" = EXCLUDED."tz", "data" = EXCLUDED."data",
          "options" = EXCLUDED."options", "catch_up" = EXCLUDED."catch_up", "catch_up_limit" = EXCLUDED."catch_up_limit", "overlap" = EXCLUDED."overlap",
          "next_run_at" = CASE WHEN s.cron = EXCLUDED.cron AND s.tz = EXCLUDED.tz THEN s.next_run_at ELSE EXCLUDED.next_run_at END,
          "updated_at" = now()
        WHERE s.source = 'runtime'
        RETURNING s.*
      )
      SELECT ${scheduleColumns()}, ${notifySchedule('next_run_at')} AS "_woken" FROM up`,

    /**
     * Reconcile the code-declared schedules $1 (a JSON array of rows, each with the next slot of its
     * expression as `next_run_at`): new ones are inserted, changed ones updated (the next run moves
     * only when the expression or zone changed), unchanged ones untouched. Runtime schedules of the
     * same keys are left alone. Returns the keys written.
     */
    upsertDeclared: `
      WITH up AS (
        INSERT INTO ${S} AS s ("key", "queue", "name", "cron", "tz", "data", "options", "catch_up", "catch_up_limit", "overlap", "source", "declared_by", "next_run_at")
        SELECT u.key, u.queue, u.name, u.cron, u.tz, COALESCE(u.data, 'null'::jsonb), u.options, u.catch_up, u.catch_up_limit, u.overlap, 'code', u.declared_by, u.next_run_at
        FROM jsonb_to_recordset($1::jsonb) AS u("key" text, "queue" text, "name" text, "cron" text, "tz" text, "data" jsonb, "options" jsonb,
          "catch_up" text, "catch_up_limit" int, "overlap" text, "declared_by" text, "next_run_at" timestamptz)
        -- NOTE: a JSON null in the batch arrives as SQL NULL: stored as JSON null.
        ON CONFLICT ("key") DO UPDATE SET
          "queue" = EXCLUDED."queue", "name" = EXCLUDED."name", "cron" = EXCLUDED."cron", "tz" = EXCLUDED."tz", "data" = EXCLUDED."data",
          "options" = EXCLUDED."options", "catch_up" = EXCLUDED."catch_up", "catch_up_limit" = EXCLUDED."catch_up_limit", "overlap" = EXCLUDED."overlap",
          "declared_by" = EXCLUDED."declared_by",
          "next_run_at" = CASE WHEN s.cron = EXCLUDED.cron AND s.tz = EXCLUDED.tz THEN s.next_run_at ELSE EXCLUDED.next_run_at END,
          "updated_at" = now()
        WHERE s.source = 'code'
          AND (s.queue, s.name, s.cron, s.tz, s.data, s.options, s.catch_up, s.catch_up_limit, s.overlap, s.declared_by)
            IS DISTINCT FROM (EXCLUDED.queue, EXCLUDED.name, EXCLUDED.cron, EXCLUDED.tz, EXCLUDED.data, EXCLUDED.options,
              EXCLUDED.catch_up, EXCLUDED.catch_up_limit, EXCLUDED.overlap, EXCLUDED.declared_by)
        RETURNING s.key, s.next_run_at, (s.xmax = 0) AS created
      ), woken AS (SELECT ${notifySchedule('min(next_run_at)')} FROM up HAVING count(*) > 0)
      SELECT key, created, (SELECT count(*) FROM woken) AS "_woken" FROM up`,

    /**
     * Serialises reconciliations of one table ($1: the lock's key): two app versions booting at once
     * would otherwise lock each other's rows in different orders (upserts, deletes) and deadlock.
     */
    reconcileLock: `SELECT pg_advisory_xact_lock(hashtext($1))`,

    /** Delete the code-declared schedules of queues $1 whose keys are not among $2. Returns their keys. */
    deleteUndeclared: `DELETE FROM ${S} WHERE source = 'code' AND queue = ANY($1::text[]) AND NOT (key = ANY($2::text[])) RETURNING key`,

    /** Which of the keys $1 belong to runtime schedules. */
    runtimeKeys: `SELECT key FROM ${S} WHERE key = ANY($1::text[]) AND source = 'runtime'`,

    /** Delete schedule $1; returns its key and source, or no row. */
    delete: `DELETE FROM ${S} WHERE key = $1 RETURNING key, source, declared_by`,

    get: `SELECT ${scheduleColumns()} FROM ${S} WHERE key = $1`,
    list: `SELECT ${scheduleColumns()} FROM ${S} ORDER BY key`,

    pause: `UPDATE ${S} SET paused = true, updated_at = now() WHERE key = $1 RETURNING ${scheduleColumns()}`,

    /**
     * Resume schedule $1: slots that passed while it was paused are not runs to catch up, so a next
     * run in the past moves to $2 (the first slot after now).
     */
    resume: `
      WITH resumed AS (
        UPDATE ${S} SET paused = false, updated_at = now(),
          next_run_at = CASE WHEN next_run_at < now() THEN $2::timestamptz ELSE next_run_at END
        WHERE key = $1 RETURNING *
      )
      SELECT ${scheduleColumns()}, ${notifySchedule('next_run_at')} AS "_woken" FROM resumed`,

    /**
     * One run of schedule $1 now, outside its expression: its slot is the statement's now(). Becomes
     * the schedule's last run. Returns the new job's id and slot (no row: no such schedule).
     */
    trigger: `
      WITH s AS (SELECT * FROM ${S} WHERE key = $1 FOR UPDATE),
      ins AS (
        INSERT INTO ${Q} (${slotJobColumns})
        SELECT ${slotJobValues('now()')} FROM s
        RETURNING id, queue
      ), upd AS (
        UPDATE ${S} AS t SET last_run_at = now(), last_job_id = ins.id FROM ins WHERE t.key = $1
      ), woken AS (${notifyJobs('ins')})
      SELECT id::text, (SELECT count(*) FROM woken) AS "_woken" FROM ins`,

    /**
     * Take up to $1 due schedules, oldest next run first, locked for this transaction (SKIP LOCKED:
     * each is taken by one enqueuer at a time, whichever process). `unfinished`: whether the last
     * run is still pending or active (for overlap 'skip').
     */
    takeDue: `
      SELECT s.key, s.cron, s.tz, s.catch_up, s.catch_up_limit, s.overlap, ${ms('s.next_run_at', 'next_run_at')},
        (s.overlap = 'skip' AND EXISTS (SELECT 1 FROM ${Q} AS j WHERE j.id = s.last_job_id AND j.state IN ('pending', 'active'))) AS unfinished,
        ${ms('now()', 'now')}
      FROM ${S} AS s
      WHERE NOT s.paused AND s.next_run_at <= now()
      ORDER BY s.next_run_at
      LIMIT $1
      FOR UPDATE OF s SKIP LOCKED`,

    /**
     * Enqueue the slots of the schedules taken (parallel arrays: $1 key, $2 slot in epoch ms), one
     * job per slot (a slot some job already has is skipped: the unique index), and move each
     * schedule ($3 key, $4 the next run it was taken with, $5 its new one): compare-and-set on the
     * next run, so a schedule moved meanwhile is not moved twice. Returns how many schedules moved
     * and how many jobs were inserted.
     */
    advance: `
      WITH slots AS (
        SELECT u.key, to_timestamp(u.slot / 1000.0) AS slot FROM unnest($1::text[], $2::float8[]) AS u(key, slot)
      ), ins AS (
        INSERT INTO ${Q} (${slotJobColumns})
        SELECT ${slotJobValues('slots.slot')} FROM slots JOIN ${S} AS s ON s.key = slots.key
        ORDER BY slots.slot, slots.key
        ON CONFLICT ("schedule_key", "scheduled_for") WHERE "schedule_key" IS NOT NULL DO NOTHING
        RETURNING id, queue, schedule_key, scheduled_for
      ), latest AS (
        SELECT DISTINCT ON (schedule_key) schedule_key, id, scheduled_for FROM ins ORDER BY schedule_key, scheduled_for DESC
      ), moved AS (
        UPDATE ${S} AS s SET next_run_at = to_timestamp(m.next_ms / 1000.0),
          last_run_at = COALESCE(latest.scheduled_for, s.last_run_at), last_job_id = COALESCE(latest.id, s.last_job_id)
        FROM unnest($3::text[], $4::float8[], $5::float8[]) AS m(key, taken_ms, next_ms)
        LEFT JOIN latest ON latest.schedule_key = m.key
        WHERE s.key = m.key AND s.next_run_at = to_timestamp(m.taken_ms / 1000.0)
        RETURNING s.key
      ), woken AS (${notifyJobs('ins')})
      SELECT (SELECT count(*) FROM moved)::int AS moved, (SELECT count(*) FROM ins)::int AS inserted, (SELECT count(*) FROM woken) AS "_woken"`,

    /** How long until the earliest next run of an unpaused schedule (ms, 0 when due; NULL: none). */
    // NOTE: GREATEST ignores NULLs, so no schedule at all would read as "due now" without the CASE.
    nextDue: `SELECT CASE WHEN min(next_run_at) IS NOT NULL THEN GREATEST(0, ceil(extract(epoch FROM min(next_run_at) - now()) * 1000))::float8 END AS in_ms
      FROM ${S} WHERE NOT paused`,
  };
}

export type ScheduleStatements = ReturnType<typeof buildScheduleStatements>;
