import type { TableNaming } from '../table-naming';

/**
 * The statements of the queue registry (`<table>_queues`, schema step 4): one row per queue, with its
 * pause flag and (refreshed now and then) its job counts.
 */
export function buildQueueStatements(n: TableNaming) {
  const R = n.queuesQualified;
  const ms = (column: string, as: string) => `floor(date_part('epoch', ${column}) * 1000 + 0.0005) AS ${as}`;
  const queueColumns = `name, paused, ${ms('paused_at', 'paused_at')}, counts, ${ms('counts_at', 'counts_at')}, ${ms('created_at', 'created_at')}, ${ms('updated_at', 'updated_at')}, declared, overrides`;
  return {
    /** Make sure the queues $1 have a row (a worker's, at boot). */
    register: `INSERT INTO ${R} (name) SELECT unnest($1::text[]) ON CONFLICT (name) DO NOTHING`,

    /**
     * Pause queue $1 (creating its row); `paused_at` keeps the first pause's time. Tells the workers
     * (a 'pause' notice), so they hand back the jobs they claimed ahead and have not started.
     */
    pause: `
      WITH paused AS (
        INSERT INTO ${R} AS r (name, paused, paused_at) VALUES ($1, true, now())
        ON CONFLICT (name) DO UPDATE SET paused = true, paused_at = COALESCE(r.paused_at, now()), updated_at = now()
        RETURNING *
      )
      SELECT ${queueColumns}, pg_notify('${n.channel}', json_build_object('t', 'pause', 'q', name)::text) AS "_woken" FROM paused`,

    /** Resume queue $1 and wake every worker of it (as a new job would). */
    resume: `
      WITH resumed AS (
        UPDATE ${R} SET paused = false, paused_at = NULL, updated_at = now() WHERE name = $1
        RETURNING *
      )
      SELECT ${queueColumns}, pg_notify('${n.channel}', json_build_object('t', 'job', 'q', name, 'in', 0)::text) AS "_woken" FROM resumed`,

    /**
     * Recount the jobs of every queue by state into the registry, unless counts younger than $2 ms
     * exist or another session is recounting right now ($1: the advisory lock's key). The count scans
     * the job table, so it runs at most once per $2 ms however many callers ask; a queue found in the
     * job table but not in the registry gets its row here.
     */
    refreshCounts: `
      WITH go AS (
        SELECT pg_try_advisory_xact_lock(hashtext($1)) AS locked
        WHERE NOT EXISTS (SELECT 1 FROM ${R} WHERE counts_at > now() - $2 * interval '1 millisecond')
      ), counted AS (
        SELECT queue, jsonb_object_agg(state, n) AS counts
        FROM (SELECT queue, state, count(*)::int AS n FROM ${n.qualified} WHERE (SELECT locked FROM go) GROUP BY queue, state) AS c
        GROUP BY queue
      ), upserted AS (
        INSERT INTO ${R} (name, counts, counts_at) SELECT queue, counts, now() FROM counted
        ON CONFLICT (name) DO UPDATE SET counts = EXCLUDED.counts, counts_at = EXCLUDED.counts_at
        RETURNING name
      )
      UPDATE ${R} SET counts = '{}', counts_at = now()
      WHERE (SELECT locked FROM go) AND name NOT IN (SELECT name FROM upserted)`,

    /** Every queue of the registry, by name. */
    list: `SELECT ${queueColumns} FROM ${R} ORDER BY name`,

    /** The declarations of the queues $1 (see lib/limits/declarations.ts), with the database's now (epoch ms). */
    readDeclarations: `SELECT name, declared, declarations, overrides, ${ms('now()', 'now')} FROM ${R} WHERE name = ANY($1::text[])`,

    /**
     * `readDeclarations`, making a row first for each of the queues $1 that has none (a worker's
     * declaration at boot: it lists every queue it has a processor for, in one round trip).
     * NOTE: the SELECT's snapshot does not see the CTE's new rows, so they come from its RETURNING:
     * each queue once. A row another transaction inserts meanwhile is in neither; the caller reads again.
     */
    registerAndReadDeclarations: `
      WITH registered AS (
        INSERT INTO ${R} (name) SELECT unnest($1::text[]) ON CONFLICT (name) DO NOTHING
        RETURNING name, declared, declarations, overrides
      )
      SELECT name, declared, declarations, overrides, ${ms('now()', 'now')} FROM ${R} WHERE name = ANY($1::text[])
      UNION ALL
      SELECT name, declared, declarations, overrides, ${ms('now()', 'now')} FROM registered`,

    /**
     * Write queue $1's declared limits $2 and declarations $3, if its declarations are still $4
     * (compare and set: two workers booting at once do not lose each other's entries; the loser
     * reads again). Returns the queue's name when written.
     */
    writeDeclarations: `
      UPDATE ${R} SET declared = $2::jsonb, declarations = $3::jsonb,
        updated_at = CASE WHEN declared IS DISTINCT FROM $2::jsonb THEN now() ELSE updated_at END
      WHERE name = $1 AND declarations = $4::jsonb
      RETURNING name`,

    /**
     * Set the runtime overrides $2 (a jsonb object) of queue $1 and remove those named in $3,
     * creating its row; wakes every worker of it (a raised limit lets pending jobs start now).
     */
    override: `
      WITH updated AS (
        INSERT INTO ${R} AS r (name, overrides) VALUES ($1, $2::jsonb)
        ON CONFLICT (name) DO UPDATE SET overrides = (r.overrides || $2::jsonb) - $3::text[], updated_at = now()
        RETURNING *
      )
      SELECT ${queueColumns}, pg_notify('${n.channel}', json_build_object('t', 'job', 'q', name, 'in', 0)::text) AS "_woken" FROM updated`,
  };
}

export type QueueStatements = ReturnType<typeof buildQueueStatements>;
