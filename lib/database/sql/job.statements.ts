import type { TableNaming } from '../table-naming';
import { CLAIMED_COLUMN_COUNT, CLAIMED_COLUMN_TYPES, claimedColumns, epochMs, epochMsAs } from './claimed-columns';
import { UNIQUE_HELD, readSchemaVersionSql } from '../migrations/job-table.ddl';
import { FLOW_LOG_SETTING } from '../migrations/v5/flows.ddl';
import { acquirePermitFunctionName, completeAndClaimFunctionName, effectiveLimit, limitedClaimFunctionName, permitsApply } from '../migrations/v5/limits.ddl';

/**
 * Every SQL statement of the queue, one named statement per operation, built once per table.
 * A batch of any size is one round trip with a fixed statement text: arrays as `unnest($n::type[])`
 * parameters, or (inserts) one JSON array of rows. The repository prepares them once per
 * connection, except the few it runs unnamed to get a plan for each batch's real size.
 */
export function buildJobStatements(n: TableNaming) {
  const Q = n.qualified;
  // NOTE: notifications carry the queue and, for delayed jobs, how soon the earliest one is due, so
  // an idle worker can arm a timer instead of waiting for its next poll. Computed by the database
  // (`run_at - now()`) so clock skew between app hosts and the database does not matter.
  const notifyJobs = (rows: string) =>
    `SELECT pg_notify('${n.channel}', json_build_object('t', 'job', 'q', queue, 'in',
       GREATEST(0, ceil(extract(epoch FROM min(run_at) - now()) * 1000)))::text)
     FROM ${rows} GROUP BY queue`;
  const finishedStates = `'completed', 'failed', 'cancelled'`;
  const ms = epochMsAs;
  // The limited claim function's job columns (see schema step 5), in `claimedColumns`' order.
  const limitedJobColumns = CLAIMED_COLUMN_TYPES.map(([c]) => `c.out_${c} AS ${c}`).join(', ');
  const jobColumns = (p = '') =>
    `${p}id, ${p}queue, ${p}name, ${p}data, ${p}state, ${p}priority, ${p}attempts, ${p}claims, ${p}max_attempts,
     ${p}backoff, ${p}timeout_ms, ${p}result, ${p}last_error, ${p}locked_by,
     ${ms(`${p}run_at`, 'run_at')}, ${ms(`${p}locked_until`, 'locked_until')}, ${ms(`${p}created_at`, 'created_at')},
     ${ms(`${p}started_at`, 'started_at')}, ${ms(`${p}finished_at`, 'finished_at')}, ${p}unique_key, ${p}progress, ${p}group_key,
     ${ms(`${p}scheduled_for`, 'scheduled_for')}, ${p}schedule_key, ${p}parent_id`;
  // The permitted claim (`completeAndClaimPermitted`). NOTE: this worker's active jobs are counted
  // in the statement's snapshot, which does not see its own completions: those are subtracted.
  // Only this worker adds to its count, so a stale count can only be too high. The permit row is
  // share-locked: a permit function lowering it waits for this claim, and this claim reads its
  // latest version.
  const permittedClaim = (traced: boolean) => `
      WITH written AS (
        UPDATE ${Q} AS j SET
          state = 'completed', result = COALESCE(u.result, 'null'::jsonb), finished_at = now(), locked_by = NULL, locked_until = NULL
        FROM unnest($8::bigint[], $9::int[], $10::jsonb[]) AS u(id, claim, result)
        WHERE j.id = u.id AND j.claims = u.claim AND j.state = 'active' AND j.locked_by = $3
        RETURNING j.id
      ), permit AS (
        SELECT p.slots, r.paused, r.rate_limited_until
        FROM ${n.permitsQualified} AS p JOIN ${n.queuesQualified} AS r ON r.name = p.queue
        WHERE p.queue = $1 AND p.worker = $3 AND p.until > now()
          AND p.total = (${effectiveLimit('r', 'globalConcurrency')} #>> '{}')::int AND ${permitsApply('r', 'now()')}
        FOR SHARE OF p
      ), room AS (
        SELECT CASE WHEN permit.paused OR permit.rate_limited_until > now() THEN 0 ELSE GREATEST(0, LEAST($2, permit.slots
          - (SELECT count(*) FROM ${Q} WHERE state = 'active' AND limits_held AND hashtext(queue) = hashtext($1) AND queue = $1 AND locked_by = $3)::int
          + (SELECT count(*) FROM written)::int)) END AS n
        FROM permit
      ), claimed AS (
        UPDATE ${Q} AS j SET
          state = 'active', attempts = j.attempts + 1, claims = j.claims + 1, locked_by = $3,
          locked_until = now() + $4 * interval '1 millisecond', started_at = now(), limits_held = true,
          max_attempts = COALESCE(j.max_attempts, $5), backoff = COALESCE(j.backoff, $6::jsonb),
          timeout_ms = COALESCE(j.timeout_ms, $7)
        WHERE j.id = ANY(ARRAY(
          SELECT id FROM ${Q}
          WHERE state = 'pending' AND hashtext(queue) = hashtext($1) AND queue = $1 AND run_at <= now()
          ORDER BY priority DESC, run_at, id
          LIMIT COALESCE((SELECT n FROM room), 0)
          FOR UPDATE SKIP LOCKED
        ))
        RETURNING ${claimedColumns('j.')}${traced ? ', j.trace_context' : ''}
      )
      SELECT *, NULL::int AS permit_slots, NULL::int AS wait_ms, NULL::text AS written FROM claimed
      UNION ALL
      SELECT ${Array.from({ length: CLAIMED_COLUMN_COUNT + (traced ? 1 : 0) }, () => 'NULL').join(', ')},
        (SELECT slots FROM permit),
        (SELECT GREATEST(1, ceil(extract(epoch FROM rate_limited_until - now()) * 1000))::int FROM permit WHERE rate_limited_until > now()),
        (SELECT array_to_string(array_agg(id), ',') FROM written)`;
  // NOTE: the conflict target names the unique index exactly (columns, expression, predicate), as
  // ON CONFLICT requires to infer it.
  const uniqueTarget = `("queue", "unique_key", COALESCE("unique_slot", 0)) WHERE ${UNIQUE_HELD}`;
  // The window number of a throttled job, from the database's clock (no skew between app hosts).
  const windowSlot = (hold: string, windowMs: string) =>
    `CASE WHEN ${hold} = 'window' THEN floor(date_part('epoch', now()) * 1000 / ${windowMs})::bigint END`;
  // UNIQUE_HELD for the rows of `alias`.
  const heldBy = (alias: string) => UNIQUE_HELD.replace(/"(unique_key|unique_hold|state|claims)"/g, `${alias}.$1`);
  // The single-row unique insert, with what to do on conflict.
  const uniqueInsert = (onConflict: string) => `
      WITH ins AS (
        INSERT INTO ${Q} AS j ("queue", "name", "data", "priority", "run_at", "max_attempts", "backoff", "timeout_ms", "unique_key", "unique_hold", "unique_slot", "group_key", "trace_context")
        VALUES ($1, $2, $3::jsonb, $4, COALESCE($5::timestamptz, now() + $6 * interval '1 millisecond'), $7, $8::jsonb, $9, $10, $11,
          ${windowSlot('$11::text', '$12::float8')}, $13, $14::jsonb)
        ON CONFLICT ${uniqueTarget}
        ${onConflict}
        RETURNING j.id, j.queue, j.run_at, (j.xmax = 0) AS fresh
      ), woken AS (
        SELECT pg_notify('${n.channel}', json_build_object('t', 'job', 'q', queue, 'in',
          GREATEST(0, ceil(extract(epoch FROM run_at - now()) * 1000)))::text)
        FROM ins
      )
      SELECT CASE WHEN fresh THEN id || ',' || ${epochMs('now()')} ELSE '=' || id END AS job FROM ins, woken`;
  // The single-row insert (`insertOne`), with the group column ($10) or without.
  const singleInsert = (grouped: boolean) => `
      WITH inserted AS (
        INSERT INTO ${Q} ("queue", "name", "data", "priority", "run_at", "max_attempts", "backoff", "timeout_ms"${grouped ? ', "group_key"' : ''})
        VALUES ($1, $2, $3::jsonb, $4, COALESCE($5::timestamptz, now() + $6 * interval '1 millisecond'), $7, $8::jsonb, $9${grouped ? ', $10' : ''})
        RETURNING id, queue, run_at
      ), woken AS (
        SELECT pg_notify('${n.channel}', json_build_object('t', 'job', 'q', queue, 'in',
          GREATEST(0, ceil(extract(epoch FROM run_at - now()) * 1000)))::text)
        FROM inserted
      )
      SELECT id || ',' || ${epochMs('now()')} AS job FROM inserted, woken`;
  // A replacement (debounce) changes data, priority and run time of a holder that has not started.
  const replaceHolder = (replace: string) =>
    `DO UPDATE SET "data" = EXCLUDED."data", "priority" = EXCLUDED."priority", "run_at" = EXCLUDED."run_at"
     WHERE ${replace} AND j.state = 'pending'`;

  return {
    /**
     * Insert jobs (any number) and wake listeners once per queue. Returns one row: the new ids in
     * input order (as one comma-separated text: parsing a thousand rows costs the client more than
     * the insert) and the statement's `now()`, which is every row's `created_at` and the base of
     * its `run_at` when it was given as a delay. The caller has everything else.
     */
    insert: `
      WITH inserted AS (
        INSERT INTO ${Q} ("queue", "name", "data", "priority", "run_at", "max_attempts", "backoff", "timeout_ms", "group_key", "trace_context")
        SELECT u.queue, u.name, COALESCE(u.data, 'null'::jsonb), u.priority,
               COALESCE(u.run_at, now() + u.delay_ms * interval '1 millisecond'),
               u.max_attempts, u.backoff, u.timeout_ms, u.group_key, u.trace_context
        -- NOTE: the batch arrives as one JSON array of rows: one JSON text for the client to build
        -- and the server to parse, instead of nine array literals that node-postgres escapes element
        -- by element (JSON payloads are full of quotes to escape). Row order is kept. A row without
        -- a trace context has no such key (NULL).
        FROM jsonb_to_recordset($1::jsonb) AS u(queue text, name text, data jsonb, priority int, run_at timestamptz,
          delay_ms bigint, max_attempts int, backoff jsonb, timeout_ms int, group_key text, trace_context jsonb)
        RETURNING id, queue, run_at
      ), woken AS (${notifyJobs('inserted')})
      SELECT array_to_string(array_agg(id ORDER BY id), ',') AS ids, ${ms('now()', 'now')}, (SELECT count(*) FROM woken) AS "_woken"
      FROM inserted`,

    /**
     * Insert one job, in the cheapest shape for the most common call, a lone `add()`: plain
     * parameters, no JSON batch to unpack, no aggregation. Returns one row with one text column,
     * `job`: the new id and the statement's `now()` in epoch ms, comma-separated, so the repository
     * can read it as one value without a row description (`SingleValueQuery`).
     */
    insertOne: singleInsert(false),

    /**
     * `insertOne` for a job with a group ($10): a statement of its own, so a plain add() sends no
     * parameter more than before.
     */
    insertOneGrouped: singleInsert(true),

    /**
     * `insertOne` for a job with every option at the table's default (priority 0, due now, the
     * processor's run options): three parameters instead of nine, the notification's delay a
     * constant. Measured about 3 µs of client and 7 µs of server CPU less per job than `insertOne`
     * (4,000 sequential inserts, 7 interleaved repetitions).
     */
    insertOneDue: `
      WITH inserted AS (
        INSERT INTO ${Q} ("queue", "name", "data") VALUES ($1, $2, $3::jsonb)
        RETURNING id
      ), woken AS (
        SELECT pg_notify('${n.channel}', json_build_object('t', 'job', 'q', $1::text, 'in', 0)::text) FROM inserted
      )
      SELECT id || ',' || ${epochMs('now()')} AS job FROM inserted, woken`,

    /**
     * Insert one job with a unique key ($10, held as $11: 'finish' | 'start' | 'window' of $12 ms;
     * $13 its group or NULL; the other parameters as `insertOne`'s), unless a job of the queue holds the key. Returns one
     * text value, as `insertOne`: `<id>,<now>` for a new job, or no row when the key was held
     * (the caller then looks the holder up: the slow path of a duplicate). Lean on purpose: most
     * unique adds find their key free, and they should cost about what a plain add costs.
     */
    insertUnique: uniqueInsert('DO NOTHING'),

    /**
     * `insertUnique` that, when the holder has not started, gives it this add's data, priority and
     * run time (debounce). Returns `<id>,<now>` for a new job, `=<id>` for a replaced holder,
     * no row when the holder was running (and keeps its data).
     */
    insertUniqueReplacing: uniqueInsert(replaceHolder('true')),

    /** The job holding the unique key $2 of queue $1, in window $3 (now's, for a window of $3 ms; or none). */
    findUniqueHolder: `
      SELECT ${jobColumns('h.')} FROM ${Q} AS h
      WHERE h.queue = $1 AND h.unique_key = $2 AND COALESCE(h.unique_slot, 0) = COALESCE(${windowSlot(`CASE WHEN $3::bigint IS NULL THEN '' ELSE 'window' END`, '$3::float8')}, 0)
        AND ${heldBy('h')}`,

    /**
     * Insert a batch of jobs (one JSON array, as the insert statement) of which some have unique
     * keys (no key twice in the batch); a row whose key is held is not inserted, and with $2
     * (replace) a holder that has not started takes the row's data, priority and run time instead.
     * Returns a row per inserted or replaced job, by id (so inserted ones in input order): its id,
     * key, window number and whether it is new, and the statement's now().
     */
    insertUniqueBatch: `
      WITH ins AS (
        INSERT INTO ${Q} AS j ("queue", "name", "data", "priority", "run_at", "max_attempts", "backoff", "timeout_ms", "unique_key", "unique_hold", "unique_slot", "group_key", "trace_context")
        SELECT u.queue, u.name, COALESCE(u.data, 'null'::jsonb), u.priority, COALESCE(u.run_at, now() + u.delay_ms * interval '1 millisecond'),
               u.max_attempts, u.backoff, u.timeout_ms, u.unique_key, u.unique_hold, u.unique_slot, u.group_key, u.trace_context
        -- NOTE: rows are inserted, and take their ids, in the array's order (as in the insert statement).
        FROM jsonb_to_recordset($1::jsonb) AS u(queue text, name text, data jsonb, priority int, run_at timestamptz,
          delay_ms bigint, max_attempts int, backoff jsonb, timeout_ms int, unique_key text, unique_hold text, unique_slot bigint, group_key text, trace_context jsonb)
        ON CONFLICT ${uniqueTarget}
        ${replaceHolder('$2::boolean')}
        RETURNING j.id, j.queue, j.run_at, j.unique_key, j.unique_slot, (j.xmax = 0) AS fresh
      ), woken AS (${notifyJobs('ins')})
      SELECT ins.id::text, ins.queue, ins.unique_key, COALESCE(ins.unique_slot, 0)::text AS unique_slot, ins.fresh, ${ms('now()', 'now')},
        (SELECT count(*) FROM woken) AS "_woken"
      FROM ins ORDER BY ins.id`,

    /** The jobs that hold the unique keys $2 (with window numbers $3, 0 for none) in queues $1. */
    findUniqueHolders: `
      SELECT ${jobColumns('h.')}, COALESCE(h.unique_slot, 0)::text AS unique_slot
      FROM unnest($1::text[], $2::text[], $3::bigint[]) AS k(queue, unique_key, slot)
      JOIN ${Q} AS h ON h.queue = k.queue AND h.unique_key = k.unique_key AND COALESCE(h.unique_slot, 0) = k.slot
      WHERE ${heldBy('h')}`,

    /** Jobs by id (the replaced holders of a batch). */
    getByIds: `SELECT ${jobColumns()} FROM ${Q} WHERE id = ANY($1::bigint[])`,

    /** The window numbers that throttled jobs added now with windows of $1 ms get (one row each). */
    windowSlots: `SELECT w::text AS window_ms, ${windowSlot(`'window'`, 'w::float8')}::text AS slot FROM unnest($1::bigint[]) AS w`,

    /**
     * Claim up to $2 due jobs of queue $1 for worker $3 with a lease of $4 ms. Run options still
     * unset are fixed here from the processor's defaults ($5-$7), so they hold on every later attempt.
     */
    claim: `
      UPDATE ${Q} AS j SET
        state = 'active', attempts = j.attempts + 1, claims = j.claims + 1, locked_by = $3,
        locked_until = now() + $4 * interval '1 millisecond', started_at = now(),
        max_attempts = COALESCE(j.max_attempts, $5), backoff = COALESCE(j.backoff, $6::jsonb),
        timeout_ms = COALESCE(j.timeout_ms, $7)
      -- NOTE: ids collected into an array first (an InitPlan), so the update visits exactly those
      -- rows by primary key; joining the sub-select instead lets the planner scan the whole table.
      WHERE j.id = ANY(ARRAY(
        SELECT id FROM ${Q}
        -- NOTE: hashtext(queue) is the claim index's first key (see the schema steps); queue = $1
        -- keeps out a queue whose name has the same hash.
        WHERE state = 'pending' AND hashtext(queue) = hashtext($1) AND queue = $1 AND run_at <= now()
          -- NOTE: checked by the claim itself, so a pause holds on every node whatever it knows; an
          -- uncorrelated sub-select, evaluated once per claim (one primary-key probe). A queue with
          -- limits (or blocked by a RateLimitedError) is left to \`claimLimited\`: this claim takes
          -- nothing from it, whatever this process believes about its limits.
          AND NOT EXISTS (SELECT 1 FROM ${n.queuesQualified} WHERE name = $1
            AND (paused OR limited OR rate_limited_until > now() OR group_blocked_until > now()))
        ORDER BY priority DESC, run_at, id
        LIMIT $2
        FOR UPDATE SKIP LOCKED
      ))
      RETURNING ${claimedColumns('j.')}`,

    /** `claim`, also returning each job's trace context (last column), for a worker with tracing on. */
    get claimTraced(): string {
      return `${this.claim}, j.trace_context`;
    },

    /**
     * The claim of a queue with limits (`claim` with the same parameters), through the limited
     * claim function (see schema step 5, limits part): a row per claimed job in `claim`'s column
     * order followed by five columns, then one last row whose job columns are NULL and whose last
     * five say when to claim again (ms, or NULL), whether more may be claimable now, whether the
     * queue still has limits, whether global concurrency is full (claim again when a job of this
     * process ends), and whether to claim with a permit (global concurrency its only limit).
     */
    claimLimited: `
      SELECT ${limitedJobColumns}, c.out_wait_ms, c.out_more, c.out_limited, c.out_full, c.out_permits
      FROM ${limitedClaimFunctionName(n)}($1, $2, $3, $4, $5, $6::jsonb, $7) AS c`,

    /**
     * `complete` of attempts of a limited queue ($8 ids, $9 claims, $10 results or NULL), then
     * `claimLimited` ($1-$7), in one round trip; the last row's last column holds the ids
     * completed, comma-separated (see schema step 5, limits part).
     */
    completeAndClaimLimited: `
      SELECT ${limitedJobColumns}, c.out_wait_ms, c.out_more, c.out_limited, c.out_full, c.out_permits, c.out_written
      FROM ${completeAndClaimFunctionName(n)}($1, $2, $3, $4, $5, $6::jsonb, $7, $8::bigint[], $9::int[], $10::jsonb[]) AS c`,

    /** `completeAndClaimLimited`, with each job's trace context right after the claimed columns. */
    completeAndClaimLimitedTraced: `
      SELECT ${limitedJobColumns}, c.out_trace_context AS trace_context, c.out_wait_ms, c.out_more, c.out_limited, c.out_full, c.out_permits, c.out_written
      FROM ${completeAndClaimFunctionName(n)}($1, $2, $3, $4, $5, $6::jsonb, $7, $8::bigint[], $9::int[], $10::jsonb[]) AS c`,

    /**
     * The claim of a queue whose only limit is global concurrency, by a worker holding a permit
     * (see schema step 5, limits part): first `complete` of its attempts ($8 ids, $9 claims, $10
     * results or NULL), then up to $2 jobs as `claim` takes them ($1-$7), but no more than the
     * permit's slots less this worker's active jobs. No registry lock: workers with permits claim
     * at once. Rows: the claimed jobs, and one row whose id is NULL with the permit's slots (NULL:
     * no permit that applies, acquire one), the ms until a RateLimitedError block ends, and the ids
     * completed, comma-separated.
     */
    completeAndClaimPermitted: permittedClaim(false),

    /** `completeAndClaimPermitted`, with each job's trace context right after the claimed columns. */
    completeAndClaimPermittedTraced: permittedClaim(true),

    /** A worker's share of a queue's global concurrency: slots, fair share, mode (see the permit function). */
    acquirePermit: `SELECT out_slots AS slots, out_share AS share, out_mode AS mode FROM ${acquirePermitFunctionName(n)}($1, $2, $3, $4)`,

    /** Gives up the permit of worker $2 for queue $1 (at shutdown; else it lapses). */
    releasePermit: `DELETE FROM ${n.permitsQualified} WHERE queue = $1 AND worker = $2 RETURNING queue`,

    /** `claimLimited`, with each job's trace context right after the claimed columns (tracing on). */
    claimLimitedTraced: `
      SELECT ${limitedJobColumns}, c.out_trace_context AS trace_context, c.out_wait_ms, c.out_more, c.out_limited, c.out_full, c.out_permits
      FROM ${limitedClaimFunctionName(n)}($1, $2, $3, $4, $5, $6::jsonb, $7) AS c`,

    /**
     * Record the outcomes of many attempts in one statement. Fenced: a row is written only if it is
     * still active, leased to this worker ($8) and on the same claim (`claims` never goes back, so
     * not even a retry() and re-claim by the same worker passes), so a worker that lost its lease
     * cannot overwrite a newer attempt. `refund` = 1 hands a job back without counting the
     * attempt (graceful shutdown, snooze); 2 as well, keeping a grouped job's run time (RateLimitedError). Returns the ids written, comma-separated (NULL when none).
     */
    finish: `
      WITH written AS (
        UPDATE ${Q} AS j SET
          state = u.state,
          result = CASE WHEN u.state = 'completed' THEN u.result ELSE j.result END,
          last_error = COALESCE(u.error, j.last_error),
          attempts = j.attempts - LEAST(u.refund, 1),
          -- NOTE: refund 2 (RateLimitedError, its block written first) keeps a grouped job's run
          -- time, so it stays its group's next job: the block, not run_at, holds it back.
          run_at = CASE WHEN u.state <> 'pending' OR (u.refund = 2 AND j.group_key IS NOT NULL) THEN j.run_at
            ELSE now() + u.delay_ms * interval '1 millisecond' END,
          finished_at = CASE WHEN u.state = 'pending' THEN NULL ELSE now() END,
          locked_by = NULL, locked_until = NULL
        FROM unnest($1::bigint[], $2::int[], $3::text[], $4::jsonb[], $5::jsonb[], $6::bigint[], $7::int[])
          AS u(id, claim, state, result, error, delay_ms, refund)
        WHERE j.id = u.id AND j.claims = u.claim AND j.state = 'active' AND j.locked_by = $8
        RETURNING j.id, j.queue, j.state, j.run_at
      ), woken AS (${notifyJobs(`written WHERE state = 'pending'`)})
      -- One row, the written ids as one text: cheaper for the client than a row per job.
      SELECT array_to_string(array_agg(id), ',') AS ids, (SELECT count(*) FROM woken) AS "_woken" FROM written`,

    /**
     * The common case of `finish`, alone: attempts that completed. Same fence; fewer arrays to send
     * and nothing to notify (a completed job is never due again). Measured about 12 % faster per
     * job than `finish` for batches of 1,000 (9.8 vs 11.1 µs, 4 interleaved rounds of 20,000).
     */
    complete: `
      WITH written AS (
        UPDATE ${Q} AS j SET
          state = 'completed', result = COALESCE(u.result, 'null'::jsonb), finished_at = now(), locked_by = NULL, locked_until = NULL
        -- NOTE: $3 is NULL when every result is JSON null (handlers that return nothing).
        FROM unnest($1::bigint[], $2::int[], $3::jsonb[]) AS u(id, claim, result)
        WHERE j.id = u.id AND j.claims = u.claim AND j.state = 'active' AND j.locked_by = $4
        RETURNING j.id
      )
      SELECT array_to_string(array_agg(id), ',') AS ids FROM written`,

    /**
     * Renew the leases of the jobs worker $3 runs (ids $1 at claims $2). Rows locked right now (being
     * finished, cancelled) are skipped rather than waited for, so heartbeats never deadlock with
     * completions. Returns the (id, claim) pairs this worker still holds (state 'active') and those
     * cancelled during their attempt (state 'cancelled'); any other pair has lost its lease. The
     * claim is returned because two attempts of one job may run here at once (an old one aborted but
     * not yet returned, and its retry).
     */
    heartbeat: `
      WITH mine AS (
        SELECT j.id, j.claims, j.state FROM ${Q} AS j
        JOIN unnest($1::bigint[], $2::int[]) AS h(id, claim) ON j.id = h.id AND j.claims = h.claim
        WHERE (j.state = 'active' AND j.locked_by = $3) OR j.state = 'cancelled'
      ), renewed AS (
        UPDATE ${Q} SET locked_until = now() + $4 * interval '1 millisecond'
        WHERE id IN (
          SELECT id FROM ${Q} WHERE id IN (SELECT id FROM mine WHERE state = 'active') AND state = 'active' AND locked_by = $3
          FOR UPDATE SKIP LOCKED
        )
      )
      SELECT id, claims, state FROM mine`,

    /**
     * Rescue up to $1 active jobs whose lease lapsed, in any queue (a lapsed lease is a lapsed lease,
     * whoever notices: a queue whose processor was removed must not keep jobs active forever): back
     * to pending with the attempt counted, or failed once attempts are exhausted, so a job that kills
     * its process ends instead of looping.
     */
    rescue: `
      WITH expired AS (
        -- NOTE: exactly the lease index's predicate and order (locked_until WHERE state = 'active'):
        -- an index range scan that stops after $1 rows, whatever the table's size.
        SELECT id FROM ${Q}
        WHERE state = 'active' AND locked_until < now()
        ORDER BY locked_until
        LIMIT $1
        FOR UPDATE SKIP LOCKED
      ), rescued AS (
        UPDATE ${Q} AS j SET
          state = CASE WHEN j.attempts >= COALESCE(j.max_attempts, 1) THEN 'failed' ELSE 'pending' END,
          finished_at = CASE WHEN j.attempts >= COALESCE(j.max_attempts, 1) THEN now() END,
          -- NOTE: a grouped job keeps its run time, so it is still its group's next job: a serial
          -- group reruns a rescued job before the next one.
          run_at = CASE WHEN j.group_key IS NULL THEN now() ELSE LEAST(j.run_at, now()) END,
          last_error = jsonb_build_object(
            'name', 'JobLeaseExpiredError',
            'message', 'The lease of worker ' || COALESCE(j.locked_by, '?') || ' lapsed at ' || j.locked_until
              || ': the process died, froze or lost its database connection during attempt ' || j.attempts,
            'attempt', j.attempts, 'at', now()),
          locked_by = NULL, locked_until = NULL
        FROM expired WHERE j.id = expired.id
        RETURNING j.id, j.queue, j.name, j.attempts, j.state, j.run_at
      ), woken AS (${notifyJobs(`rescued WHERE state = 'pending'`)})
      SELECT id, queue, name, attempts, state, (SELECT count(*) FROM woken) AS "_woken" FROM rescued`,

    /**
     * Hand back job $1 (claim $2, leased to worker $3), which that worker has no handler for (a
     * rolling deploy), without counting the attempt: due again in $5 ms, for a worker that knows the
     * name. `unknownSince` in its `last_error` ($6, a MissingHandlerError) records the first hand-back;
     * once that is $4 ms old the job is failed instead (the attempt counted). Fenced like `finish`.
     * Returns the job's new state (no row when fenced out).
     */
    handBackUnknown: `
      WITH target AS (
        SELECT id,
          COALESCE(CASE WHEN last_error->>'name' = 'MissingHandlerError' THEN (last_error->>'unknownSince')::timestamptz END, now()) AS since
        FROM ${Q} WHERE id = $1 AND claims = $2 AND state = 'active' AND locked_by = $3
        FOR UPDATE
      ), decided AS (
        SELECT id, since, since <= now() - $4 * interval '1 millisecond' AS expired FROM target
      ), handed AS (
        UPDATE ${Q} AS j SET
          state = CASE WHEN d.expired THEN 'failed' ELSE 'pending' END,
          attempts = CASE WHEN d.expired THEN j.attempts ELSE j.attempts - 1 END,
          run_at = CASE WHEN d.expired THEN j.run_at ELSE now() + $5 * interval '1 millisecond' END,
          finished_at = CASE WHEN d.expired THEN now() END,
          last_error = $6::jsonb || jsonb_build_object('unknownSince', d.since, 'at', now()),
          locked_by = NULL, locked_until = NULL
        FROM decided AS d WHERE j.id = d.id
        RETURNING j.id, j.queue, j.state, j.run_at
      ), woken AS (${notifyJobs(`handed WHERE state = 'pending'`)})
      SELECT state, (SELECT count(*) FROM woken) AS "_woken" FROM handed`,

    /**
     * Cancel a pending, active or blocked job, and the unfinished descendants of a flow's job (found
     * through `parent_id`: the children of `addFlow`, not the jobs a `dependsOn` names, which others
     * may need). An active one's worker is told through NOTIFY to abort it. Returns a row per job
     * cancelled, `root` true for job $1 (none when $1 was not cancelled: nothing else is either).
     */
    cancel: `
      WITH RECURSIVE tree AS (
        SELECT $1::bigint AS id
        UNION ALL
        SELECT c.id FROM ${Q} AS c JOIN tree ON c.parent_id = tree.id
      ), prev AS (
        -- NOTE: locked in id order, the order the flow trigger locks dependents in.
        SELECT id, state AS prev_state FROM ${Q} WHERE id IN (SELECT id FROM tree) ORDER BY id FOR UPDATE
      ), cancelled AS (
        UPDATE ${Q} AS j SET state = 'cancelled', finished_at = now(), locked_by = NULL, locked_until = NULL
        FROM prev WHERE j.id = prev.id AND prev.prev_state IN ('pending', 'active', 'blocked')
          AND EXISTS (SELECT 1 FROM prev AS r WHERE r.id = $1 AND r.prev_state IN ('pending', 'active', 'blocked'))
        RETURNING j.*, prev.prev_state
      )
      SELECT ${jobColumns('cancelled.')}, prev_state, cancelled.id = $1 AS root,
        CASE WHEN prev_state = 'active'
          THEN pg_notify('${n.channel}', json_build_object('t', 'cancel', 'id', id::text)::text) END AS "_woken"
      FROM cancelled`,

    /**
     * Put a failed or cancelled job back to pending with a fresh attempt budget; a job still waiting
     * for dependencies goes back to blocked instead, unless one of them failed for good (onChildFailure
     * 'fail'), which would fail it again at once: then nothing changes (no row).
     */
    retry: `
      WITH revived AS (
        UPDATE ${Q} AS j SET state = CASE WHEN COALESCE(j.deps_pending, 0) > 0 THEN 'blocked' ELSE 'pending' END,
          attempts = 0, run_at = now(), finished_at = NULL, result = NULL, locked_by = NULL, locked_until = NULL
        WHERE j.id = $1 AND j.state IN ('failed', 'cancelled')
          AND NOT (COALESCE(j.deps_pending, 0) > 0 AND j.on_child_failure IS DISTINCT FROM 'continue' AND EXISTS (
            SELECT 1 FROM ${n.dependenciesQualified} AS x JOIN ${Q} AS c ON c.id = x.depends_on
            WHERE x.job_id = j.id AND NOT x.settled AND c.state IN ('failed', 'cancelled')))
        RETURNING *
      ), woken AS (${notifyJobs(`revived WHERE state = 'pending'`)})
      SELECT ${jobColumns('revived.')}, (SELECT count(*) FROM woken) AS "_woken" FROM revived`,

    /**
     * Which of the queues $1 have a due pending job, and whether each has limits (then its poller
     * claims with `claimLimited`): the poll of a process's idle queues in one statement. Each
     * EXISTS is one descent of the claim index.
     */
    dueQueues: `
      SELECT q.queue, COALESCE(r.limited OR r.group_blocked_until > now(), false) AS limited
      FROM unnest($1::text[]) AS q(queue) LEFT JOIN ${n.queuesQualified} AS r ON r.name = q.queue
      WHERE NOT COALESCE(r.paused OR r.rate_limited_until > now(), false)
      AND EXISTS (
        SELECT 1 FROM ${Q} AS j
        WHERE j.state = 'pending' AND hashtext(j.queue) = hashtext(q.queue) AND j.queue = q.queue AND j.run_at <= now()
      )`,

    getById: `SELECT ${jobColumns()} FROM ${Q} WHERE id = $1`,

    /** Jobs of one queue and/or name ($1, $2: null for any), at most $3: oldest first, or newest first. */
    listOldestFirst: `SELECT ${jobColumns()} FROM ${Q} WHERE ($1::text IS NULL OR queue = $1) AND ($2::text IS NULL OR name = $2) ORDER BY id LIMIT $3`,
    listNewestFirst: `SELECT ${jobColumns()} FROM ${Q} WHERE ($1::text IS NULL OR queue = $1) AND ($2::text IS NULL OR name = $2) ORDER BY id DESC LIMIT $3`,

    /** Testing (`nestjs-pg-queue/testing`): every job of the table goes, with every log entry and dependency. */
    deleteAll: `WITH logs AS (DELETE FROM ${n.logsQualified}), edges AS (DELETE FROM ${n.dependenciesQualified}) DELETE FROM ${Q}`,

    countAll: `SELECT state, count(*)::int AS n FROM ${Q} GROUP BY state`,
    countQueue: `SELECT state, count(*)::int AS n FROM ${Q} WHERE queue = $1 GROUP BY state`,

    /**
     * Retention: delete up to $2 finished jobs that finished more than $1 ms ago, with their logs and
     * dependency rows. A finished job that an unfinished one depends on is kept until that one is
     * finished too (its `getChildren()` still lists it).
     */
    deleteFinished: `
      WITH old AS (
        SELECT id, has_dependents, deps_pending FROM ${Q} AS j
        WHERE state IN (${finishedStates}) AND finished_at < now() - $1 * interval '1 millisecond'
          AND (j.has_dependents IS NULL OR NOT EXISTS (
            SELECT 1 FROM ${n.dependenciesQualified} AS x JOIN ${Q} AS p ON p.id = x.job_id
            WHERE x.depends_on = j.id AND p.state NOT IN (${finishedStates})))
        LIMIT $2 FOR UPDATE SKIP LOCKED
      ), logs AS (
        -- NOTE: no foreign key: its trigger would run on every update of every job row.
        DELETE FROM ${n.logsQualified} WHERE job_id IN (SELECT id FROM old)
      ), edges_out AS (
        DELETE FROM ${n.dependenciesQualified} WHERE job_id IN (SELECT id FROM old WHERE deps_pending IS NOT NULL)
      ), edges_in AS (
        DELETE FROM ${n.dependenciesQualified} WHERE depends_on IN (SELECT id FROM old WHERE has_dependents)
      )
      DELETE FROM ${Q} WHERE id IN (SELECT id FROM old)`,

    /**
     * Bulk insert by COPY, as one simple-protocol script (see `CopyInQuery`) with one COPY per
     * piece of rows: PostgreSQL inserts COPY rows a page at a time (one WAL record per page, not
     * per row), and each COPY's rows reach the table while the next piece is still being made. On
     * the benchmark's 1,000-job `addBulk`, the `insert` statement reached about 0.55 of the raw
     * reference's multi-row INSERT; this script about 0.88 (bench/README.md).
     * COPY cannot compute `now() + delay`, so rows given as a delay use `insert` instead; `run_at`
     * arrives as an ISO time or as `now` (the transaction's start, as `now()`).
     *
     * COPY returns no ids. Ours are found without a scan when they are contiguous: a `nextval`
     * taken first is below all of them (a session's `nextval`s only grow, whatever the sequence's
     * cache), `currval` afterwards is the last one, and `count` ids between the two can only be
     * ours, in input order. When other sessions took ids in between, the range is searched for the
     * rows this transaction wrote (`xmin`). `wakes` holds one notification expression per queue.
     */
    copyInsert: (count: number, pieces: number, wakes: string[], defaultsOnly: boolean, withUnique = false, withGroup = false) => {
      const columns =
        (defaultsOnly ? `"queue", "name", "data"` : `"queue", "name", "data", "priority", "run_at", "max_attempts", "backoff", "timeout_ms"`) +
        (withUnique ? `, "unique_key", "unique_hold"` : '') +
        (withGroup ? `, "group_key"` : '');
      const sequence = `pg_get_serial_sequence('${Q}', 'id')::regclass`;
      const floor = `current_setting('nestjs_pg_queue.copy_floor')::bigint`;
      return `SELECT set_config('nestjs_pg_queue.copy_floor', nextval(${sequence})::text, true);
${`COPY ${Q} (${columns}) FROM STDIN;\n`.repeat(pieces)}SELECT ${floor}::text AS floor, currval(${sequence})::text AS last, ${ms('now()', 'now')},
  CASE WHEN currval(${sequence}) - ${floor} = ${count} THEN NULL ELSE
    (SELECT string_agg(id::text, ',' ORDER BY id) FROM ${Q}
     WHERE id > ${floor} AND id <= currval(${sequence}) AND xmin = pg_current_xact_id()::xid) END AS ids,
  ${wakes.map((w, i) => `pg_notify('${n.channel}', ${w}) AS "_woken${i}"`).join(', ')}`;
    },

    /** The notification `copyInsert` sends for a queue whose earliest job is due at `runAt` (ISO, or null for now). */
    copyWake: (queueLiteral: string, runAtLiteral: string | null) =>
      `json_build_object('t', 'job', 'q', ${queueLiteral}::text, 'in', ${
        runAtLiteral === null ? '0' : `GREATEST(0, ceil(extract(epoch FROM ${runAtLiteral}::timestamptz - now()) * 1000))`
      })::text`,

    /** Flows: log the flow trigger's events of this transaction (see FLOW_LOG_SETTING), and read them. */
    startFlowLog: `SELECT set_config('${FLOW_LOG_SETTING}', '[', true)`,
    readFlowLog: `SELECT current_setting('${FLOW_LOG_SETTING}') AS log`,

    readSchemaVersion: readSchemaVersionSql,
    migrationLock: `SELECT pg_advisory_xact_lock(hashtext($1))`,

    /** For other statement files (the job management API's): every job column, of alias `p`, as `RawJobRow` reads it. */
    jobColumns,
    /** For other statement files: the SELECT that wakes listeners once per queue of the rows `rows` (with queue and run_at). */
    notifyJobs,
  };
}

export type JobStatements = ReturnType<typeof buildJobStatements>;

export { CLAIMED_COLUMN_COUNT };
