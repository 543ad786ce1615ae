import type { TableNaming } from '../../table-naming';
import { CLAIMED_COLUMN_TYPES, claimedColumns } from '../../sql/claimed-columns';

// The limited claim's job columns: the claimed columns (in their order) and the trace context,
// returned as columns of their own (`out_<column>`), not as one composite of the job row: the
// caller reads only these, and taking a composite apart field by field cost about as much as the
// rest of the answer.
const jobColumnsOut = [...CLAIMED_COLUMN_TYPES, ['trace_context', 'jsonb']].map(([c, t]) => `out_${c} ${t}`).join(', ');
/** A row without a job, for the hint rows. */
const noJob = [...CLAIMED_COLUMN_TYPES, ['trace_context', 'jsonb']].map(([, t]) => `NULL::${t}`).join(', ');

/**
 * The effective value of limit `key` of the registry row `r`, as jsonb (SQL NULL or JSON null when
 * unlimited): the runtime override when the key is present in `overrides`, else the value
 * declared in code. This is the contract with the configuration side (`declared`/`overrides`).
 */
export const effectiveLimit = (r: string, key: string) => {
  const col = (c: string) => (r ? `${r}.${c}` : c);
  return `(CASE WHEN ${col('overrides')} ? '${key}' THEN ${col('overrides')} -> '${key}' ELSE ${col('declared')} -> '${key}' END)`;
};

/** The four limit keys of the registry's `declared`/`overrides` jsonb. */
export const LIMIT_KEYS = ['globalConcurrency', 'rateLimit', 'groupConcurrency', 'groupRateLimit'] as const;

/** The name of the limited claim function of a table (see `limitedClaimFunction`). */
export const limitedClaimFunctionName = (n: TableNaming) => `"${n.schema}"."${n.prefix}_claim_limited"`;
/** The name of the function that completes jobs and then claims (see `completeAndClaimFunction`). */
export const completeAndClaimFunctionName = (n: TableNaming) => `"${n.schema}"."${n.prefix}_complete_claim_limited"`;

/** The name of the function that gives a worker its share of a global concurrency limit (see `acquirePermitFunction`). */
export const acquirePermitFunctionName = (n: TableNaming) => `"${n.schema}"."${n.prefix}_acquire_permit"`;

/** The trigger function that voids a queue's permits when its limits change. */
const voidPermitsFunctionName = (n: TableNaming) => `"${n.schema}"."${n.prefix}_void_permits"`;

/**
 * SQL true when the registry row `r` (at `now`) can be claimed with permits: global concurrency is
 * its only limit and no group is blocked. Shared by the limited claim, the permit function and the
 * permitted claim, so the three agree on when permits apply.
 */
export const permitsApply = (r: string, now: string) =>
  `(${effectiveLimit(r, 'globalConcurrency')} IS NOT NULL AND jsonb_typeof(${effectiveLimit(r, 'globalConcurrency')}) <> 'null'
    AND ${['rateLimit', 'groupConcurrency', 'groupRateLimit'].map((k) => `COALESCE(jsonb_typeof(${effectiveLimit(r, k)}), 'null') = 'null'`).join(' AND ')}
    AND NOT COALESCE(${r}.group_blocked_until > ${now}, false))`;

/** How many groups one limited claim examines at most (it goes on from there next time). */
export const GROUP_WALK_CAP = 256;
/**
 * In a queue with group limits, jobs without a group are looked for among the first pending jobs
 * in claim order: twice the slots left plus 16, at most this many (a bounded scan: see
 * docs/limits-and-groups.md).
 */
export const UNGROUPED_SCAN_ROWS = 1000;

/**
 * Schema step 5, the limits part (see ./README.md): what the claim needs to enforce global
 * concurrency, rate limits and groups across every process.
 *
 * - Registry: `limited`, a stored generated column (true when any of the four limits is set), so the
 *   plain claim's one primary-key probe can step aside for limited queues, and no statement writing
 *   `declared`/`overrides` has to maintain it; the sliding-window log of recent claims
 *   (`rate_log_at`, `rate_log_n`); the round-robin position among groups (`group_cursor`); and
 *   `group_blocked_until`, the latest end of a group's RateLimitedError block; and `hungry_by` /
 *   `hungry_until`, the last worker whose claim found less than its fair share free (see the claim).
 * - Groups (`<table>_groups`): per (queue, group) its RateLimitedError block and rate log; a row
 *   exists only for groups that were rate limited.
 * - Job table: `limits_held`, set by the limited claim; an active job with it counts against its
 *   queue's (and group's) limits. Two partial indexes that only grouped or limited jobs enter, so
 *   queues without limits and jobs without groups pay nothing for them.
 * - The limited claim itself, a function: it locks the registry row, then each query inside it
 *   sees what the previous claim committed (a new snapshot per statement), which one SQL statement
 *   could not (its snapshot predates the lock it waits for).
 */
export const limitsDdl = {
  up: (n: TableNaming): string[] => [
    `ALTER TABLE ${n.queuesQualified}
      ADD COLUMN IF NOT EXISTS "limited" boolean GENERATED ALWAYS AS (${LIMIT_KEYS.map((k) => `COALESCE(jsonb_typeof(${effectiveLimit('', k)}) <> 'null', false)`).join(' OR ')}) STORED,
      ADD COLUMN IF NOT EXISTS "rate_log_at" timestamptz[] NOT NULL DEFAULT '{}',
      ADD COLUMN IF NOT EXISTS "rate_log_n" integer[] NOT NULL DEFAULT '{}',
      ADD COLUMN IF NOT EXISTS "group_cursor" text,
      ADD COLUMN IF NOT EXISTS "group_blocked_until" timestamptz,
      ADD COLUMN IF NOT EXISTS "hungry_by" text,
      ADD COLUMN IF NOT EXISTS "hungry_until" timestamptz`,
    `CREATE TABLE IF NOT EXISTS ${n.groupsQualified} (
      "queue" text NOT NULL,
      "group_key" text NOT NULL,
      "rate_limited_until" timestamptz,
      "rate_log_at" timestamptz[] NOT NULL DEFAULT '{}',
      "rate_log_n" integer[] NOT NULL DEFAULT '{}',
      "updated_at" timestamptz NOT NULL DEFAULT now(),
      PRIMARY KEY ("queue", "group_key")
    )`,
    `ALTER TABLE ${n.qualified} ADD COLUMN IF NOT EXISTS "limits_held" boolean`,
    // NOTE: the walk over a queue's groups (next group after the cursor) and each group's next
    // jobs in claim order. Only pending jobs with a group enter it.
    `CREATE INDEX IF NOT EXISTS "${n.prefix}_group_pending_idx" ON ${n.qualified} (hashtext("queue"), "group_key", "priority" DESC, "run_at", "id") WHERE "state" = 'pending' AND "group_key" IS NOT NULL`,
    // NOTE: active jobs claimed under limits, by queue and group: the counts of global and group
    // concurrency. Jobs of unlimited queues never enter it.
    `CREATE INDEX IF NOT EXISTS "${n.prefix}_limits_active_idx" ON ${n.qualified} (hashtext("queue"), "group_key") WHERE "state" = 'active' AND "limits_held"`,
    // NOTE: a worker's share of a queue's global concurrency (see `acquirePermitFunction`): `slots`
    // it may hold at once, `wants` (its own concurrency) for the fair division, `total` the limit
    // it was computed under (a changed limit voids it), `until` when it lapses unless renewed.
    `CREATE TABLE IF NOT EXISTS ${n.permitsQualified} (
      "queue" text NOT NULL,
      "worker" text NOT NULL,
      "slots" integer NOT NULL,
      "wants" integer NOT NULL,
      "total" integer NOT NULL,
      "until" timestamptz NOT NULL,
      PRIMARY KEY ("queue", "worker")
    )`,
    limitedClaimFunction(n),
    completeAndClaimFunction(n),
    acquirePermitFunction(n),
    // NOTE: a change of a queue's limits (or a group block, under which permits no longer apply)
    // voids its permits in the same transaction: deleting them waits for the permitted claims in
    // flight, and no later one finds a permit computed under the old limits.
    `CREATE OR REPLACE FUNCTION ${voidPermitsFunctionName(n)}() RETURNS trigger LANGUAGE plpgsql AS $pgq$
    BEGIN
      DELETE FROM ${n.permitsQualified} WHERE queue = NEW.name;
      RETURN NULL;
    END
    $pgq$`,
    `DROP TRIGGER IF EXISTS "${n.prefix}_void_permits" ON ${n.queuesQualified}`,
    `CREATE TRIGGER "${n.prefix}_void_permits" AFTER UPDATE OF "declared", "overrides", "group_blocked_until" ON ${n.queuesQualified}
      FOR EACH ROW WHEN (OLD."declared" IS DISTINCT FROM NEW."declared" OR OLD."overrides" IS DISTINCT FROM NEW."overrides"
        OR NEW."group_blocked_until" IS DISTINCT FROM OLD."group_blocked_until")
      EXECUTE FUNCTION ${voidPermitsFunctionName(n)}()`,
    // --- limits configuration (declarations of the workers; see lib/limits/declarations.ts) ---
    // NOTE: `declared` holds the winning declaration only (what the claim reads); which worker
    // declares what, and since when, is kept beside it.
    `ALTER TABLE ${n.queuesQualified} ADD COLUMN IF NOT EXISTS "declarations" jsonb NOT NULL DEFAULT '{}'`,
  ],
  down: (n: TableNaming): string[] => [
    // --- limits configuration ---
    `ALTER TABLE ${n.queuesQualified} DROP COLUMN IF EXISTS "declarations"`,
    // --- limits enforcement ---
    `DROP TRIGGER IF EXISTS "${n.prefix}_void_permits" ON ${n.queuesQualified}`,
    `DROP FUNCTION IF EXISTS ${voidPermitsFunctionName(n)}()`,
    `DROP FUNCTION IF EXISTS ${acquirePermitFunctionName(n)}(text, text, integer, integer)`,
    `DROP TABLE IF EXISTS ${n.permitsQualified}`,
    `DROP FUNCTION IF EXISTS ${completeAndClaimFunctionName(n)}(text, integer, text, integer, integer, jsonb, integer, bigint[], integer[], jsonb[])`,
    `DROP FUNCTION IF EXISTS ${limitedClaimFunctionName(n)}(text, integer, text, integer, integer, jsonb, integer)`,
    `DROP INDEX IF EXISTS "${n.schema}"."${n.prefix}_limits_active_idx"`,
    `DROP INDEX IF EXISTS "${n.schema}"."${n.prefix}_group_pending_idx"`,
    `ALTER TABLE ${n.qualified} DROP COLUMN IF EXISTS "limits_held"`,
    `DROP TABLE IF EXISTS ${n.groupsQualified}`,
    `ALTER TABLE ${n.queuesQualified} DROP COLUMN IF EXISTS "limited", DROP COLUMN IF EXISTS "rate_log_at", DROP COLUMN IF EXISTS "rate_log_n",
      DROP COLUMN IF EXISTS "group_cursor", DROP COLUMN IF EXISTS "group_blocked_until",
      DROP COLUMN IF EXISTS "hungry_by", DROP COLUMN IF EXISTS "hungry_until"`,
  ],
};

/**
 * The claim of a queue with limits: `claim_limited(queue, limit, worker, lease ms, max attempts,
 * backoff, timeout ms)`. Returns a row per claimed job (its claimed columns and trace context,
 * `out_id` to `out_trace_context`), then one last row without a job that tells the caller:
 * `out_wait_ms`, when a limit will let more start (rate window, block); `out_more`, whether more may
 * be claimable now (group walk cut short); `out_limited`, false when the queue has no limit any
 * more (the caller goes back to the plain claim); `out_full`, global concurrency (or this worker's
 * fair share of it) is full, so claim again when a job of this process ends; `out_permits`, global
 * concurrency is the only limit, so claim with a permit (see `acquirePermitFunction`).
 *
 * Order of the checks, all under the registry row's lock (so claims of one queue take turns on
 * every node): pause, the queue's RateLimitedError block, global concurrency (active jobs counted
 * through the limits index), the queue's sliding window (the log of recent claims: time and count,
 * one clock for the log and `started_at`: `clock_timestamp()` read under the lock after every
 * count, so serialised claims see increasing times), then, with group limits, a round-robin walk over the groups with
 * pending jobs starting after the group the previous claim ended on, each group given at most its
 * free slots (group concurrency, group window, group block), in claim order within the group.
 *
 * Fair between workers under a global concurrency limit: a claim that wanted more than was free
 * while its worker held less than its fair share (the limit divided among the workers holding
 * slots or permits, itself, and the hungry one) marks that worker hungry (for one second); while
 * another worker is hungry a claim takes no more than its own share, and wakes the queue (a job
 * notification) when the hungry worker holds nothing, so no worker is left out while the others
 * retake the slots they free (a worker that completes and claims in one statement would otherwise
 * always get back the slots it frees). Workers that hold permits count with their permits.
 */
function limitedClaimFunction(n: TableNaming): string {
  const T = n.qualified;
  const R = n.queuesQualified;
  const G = n.groupsQualified;
  const P = n.permitsQualified;
  const int = (e: string) => `(${e} #>> '{}')::int`;
  const field = (e: string, f: string) => `(${e} ->> '${f}')::int`;
  const ms = (interval: string) => `GREATEST(1, ceil(extract(epoch FROM ${interval}) * 1000))::int`;
  // Entries of a rate log newer than this are still in the window of `per` ms.
  const kept = (per: string) => `v_now - ${per} * interval '1 millisecond'`;
  // The pruned sliding-window log of `src` (arrays `src.rate_log_at`, `src.rate_log_n`) into
  // `<into>_at`/`<into>_n`, its sum into v_used and its oldest entry into v_oldest.
  const pruneLog = (src: string, per: string, into: string) => `
      SELECT COALESCE(array_agg(l.a ORDER BY l.i), '{}'), COALESCE(array_agg(l.c ORDER BY l.i), '{}'), COALESCE(sum(l.c), 0)::int, min(l.a)
        INTO ${into}_at, ${into}_n, v_used, v_oldest
        FROM unnest(${src}.rate_log_at, ${src}.rate_log_n) WITH ORDINALITY AS l(a, c, i)
        WHERE l.a > ${kept(per)};`;
  // The groups with pending jobs from `start` on, in group order, each with its first job in claim
  // order and whether that job is due, into v_bk/v_bh/v_bd: a recursive skip scan of the groups
  // index (one descent per group, in one statement). It goes on until it has found v_want groups
  // with a free slot of group concurrency (v_akeys/v_an), or v_steps groups, or the last group;
  // v_found is how many of them have a free slot.
  const free = (k: string) => `(CASE WHEN v_grc IS NULL OR COALESCE(v_an[array_position(v_akeys, ${k})], 0) < v_grc THEN 1 ELSE 0 END)`;
  const groupBatch = (start: string) => `
          WITH RECURSIVE w(k, id, due, n, f) AS (
            (SELECT j.group_key, j.id, j.run_at <= v_now, 1, ${free('j.group_key')} FROM ${T} AS j
              WHERE j.state = 'pending' AND ${start} AND hashtext(j.queue) = v_hash AND j.queue = p_queue
              ORDER BY j.group_key, j.priority DESC, j.run_at, j.id
              LIMIT 1)
            UNION ALL
            SELECT x.group_key, x.id, x.due, w.n + 1, w.f + ${free('x.group_key')} FROM w CROSS JOIN LATERAL (
              SELECT j.group_key, j.id, j.run_at <= v_now AS due FROM ${T} AS j
              WHERE j.state = 'pending' AND j.group_key > w.k AND hashtext(j.queue) = v_hash AND j.queue = p_queue
              ORDER BY j.group_key, j.priority DESC, j.run_at, j.id
              LIMIT 1) AS x
            WHERE w.f < v_want AND w.n < v_steps
          )
          SELECT array_agg(w.k ORDER BY w.n), array_agg(w.id ORDER BY w.n), array_agg(w.due ORDER BY w.n), COALESCE(max(w.f), 0)
            INTO v_bk, v_bh, v_bd, v_found FROM w;`;
  // Up to `slots` due jobs of group `key` in claim order, appended to v_ids (and the group's
  // count to v_gkeys/v_gn). NOTE: FOR UPDATE without SKIP LOCKED: the group's next job is waited
  // for (a cancel holding it), never skipped, so a serial group keeps its order.
  const takeFromGroup = (key: string, slots: string) => `
            v_take := ARRAY(
              SELECT id FROM ${T}
              WHERE state = 'pending' AND group_key = ${key} AND hashtext(queue) = v_hash AND queue = p_queue AND run_at <= v_now
              ORDER BY priority DESC, run_at, id
              LIMIT ${slots}
              FOR UPDATE);
            IF cardinality(v_take) > 0 THEN
              v_ids := v_ids || v_take;
              v_gkeys := v_gkeys || ${key};
              v_gn := v_gn || cardinality(v_take);
            END IF;`;
  return `CREATE OR REPLACE FUNCTION ${limitedClaimFunctionName(n)}(
    p_queue text, p_limit integer, p_worker text, p_lock_ms integer, p_max_attempts integer, p_backoff jsonb, p_timeout_ms integer)
  RETURNS TABLE (${jobColumnsOut}, out_wait_ms integer, out_more boolean, out_limited boolean, out_full boolean, out_permits boolean)
  LANGUAGE plpgsql VOLATILE AS $pgq$
  DECLARE
    r record;
    g record;
    v_hash integer := hashtext(p_queue);
    v_now timestamptz;
    v_free integer := p_limit;
    v_gc integer; v_rmax integer; v_rper integer; v_grc integer; v_grmax integer; v_grper integer;
    v_grouped boolean;
    v_unlimited boolean;
    v_active integer; v_used integer; v_oldest timestamptz;
    v_log_at timestamptz[]; v_log_n integer[]; v_qlog_at timestamptz[]; v_qlog_n integer[];
    v_gkeys text[] := '{}'; v_gn integer[] := '{}';
    v_start timestamptz;
    v_wait integer;
    v_more boolean := false;
    v_ids bigint[] := '{}';
    v_take bigint[];
    v_slots integer;
    v_key text; v_next text; v_cursor text;
    v_akeys text[] := '{}'; v_an integer[] := '{}';
    v_bk text[]; v_bh bigint[]; v_bd boolean[];
    v_heads bigint[] := '{}'; v_hkeys text[] := '{}';
    v_want integer; v_steps integer; v_found integer; v_n integer; v_i integer;
    v_group_blocks boolean;
    v_wrapped boolean := false;
    v_examined integer := 0;
    v_starved boolean := false;
    v_mine integer;
    v_others integer;
    v_share integer;
    v_hungry boolean := false;
    v_hungry_holds boolean := false;
    v_wake boolean := false;
    v_full boolean := false;
  BEGIN
    SELECT * INTO r FROM ${R} WHERE name = p_queue FOR UPDATE;
    v_now := clock_timestamp();
    -- NOTE: a queue without limits (the caller's belief was stale, or it is the first claim) is
    -- claimed here as the plain claim would, so the answer is not wasted; the caller switches.
    v_unlimited := NOT FOUND OR NOT (r.limited OR COALESCE(r.group_blocked_until > v_now, false));
    IF r.paused THEN
      RETURN QUERY SELECT ${noJob}, NULL::integer, false, NOT v_unlimited, false, false;
      RETURN;
    END IF;
    IF r.rate_limited_until > v_now THEN
      RETURN QUERY SELECT ${noJob}, ${ms('r.rate_limited_until - v_now')}, false, NOT v_unlimited, false, false;
      RETURN;
    END IF;
    v_gc := ${int(effectiveLimit('r', 'globalConcurrency'))};
    v_rmax := ${field(effectiveLimit('r', 'rateLimit'), 'max')};
    v_rper := ${field(effectiveLimit('r', 'rateLimit'), 'perMs')};
    v_grc := ${int(effectiveLimit('r', 'groupConcurrency'))};
    v_grmax := ${field(effectiveLimit('r', 'groupRateLimit'), 'max')};
    v_grper := ${field(effectiveLimit('r', 'groupRateLimit'), 'perMs')};
    v_group_blocks := COALESCE(r.group_blocked_until > v_now, false);
    v_grouped := v_grc IS NOT NULL OR v_grmax IS NOT NULL OR v_group_blocks;

    IF v_gc IS NOT NULL THEN
      -- NOTE: workers that claim with permits hold their share whether or not they use it at this
      -- moment: their permits are locked (waiting for their claims in flight), then each worker
      -- counts as the larger of its permit and its active jobs.
      PERFORM 1 FROM ${P} WHERE queue = p_queue AND worker <> p_worker AND until > v_now FOR UPDATE;
      SELECT COALESCE(sum(CASE WHEN w = p_worker THEN COALESCE(a.n, 0) ELSE GREATEST(COALESCE(a.n, 0), COALESCE(p.slots, 0)) END), 0)::int,
          COALESCE(max(a.n) FILTER (WHERE w = p_worker), 0)::int,
          count(*) FILTER (WHERE w <> p_worker)::int,
          COALESCE(bool_or(w = r.hungry_by), false)
        INTO v_active, v_mine, v_others, v_hungry_holds
        FROM (SELECT locked_by AS w, count(*)::int AS n FROM ${T}
              WHERE state = 'active' AND limits_held AND hashtext(queue) = v_hash AND queue = p_queue GROUP BY locked_by) AS a
        FULL JOIN (SELECT worker AS w, slots FROM ${P} WHERE queue = p_queue AND until > v_now) AS p USING (w);
      v_hungry := r.hungry_by IS DISTINCT FROM p_worker AND r.hungry_until > v_now;
      -- The fair share: the limit divided among the workers that hold slots or permits, this one,
      -- and the hungry one if it holds none.
      v_share := ceil(v_gc::numeric / (v_others + 1 + CASE WHEN v_hungry AND NOT v_hungry_holds THEN 1 ELSE 0 END))::int;
      IF v_gc - v_active < v_free THEN
        v_free := GREATEST(0, v_gc - v_active);
        -- NOTE: a slot frees when an active job ends; this process hears of its own ones.
        v_full := true;
      END IF;
      -- NOTE: a worker starves when it wanted more than was free while holding less than its share.
      v_starved := v_free < p_limit AND v_mine < v_share;
      -- While another worker is hungry, this one takes no more than its share.
      IF v_hungry AND v_free > v_share - v_mine THEN
        v_free := GREATEST(0, v_share - v_mine);
        v_full := true;
        v_wake := NOT v_hungry_holds;
      END IF;
    END IF;
    IF v_rmax IS NOT NULL AND v_free > 0 THEN
      ${pruneLog('r', 'v_rper', 'v_qlog')}
      IF v_rmax - v_used < v_free THEN
        v_free := v_rmax - v_used;
        -- The window lets more start once its oldest entry leaves it.
        v_wait := ${ms(`COALESCE(v_oldest, v_now) + v_rper * interval '1 millisecond' - v_now`)};
      END IF;
    END IF;

    IF v_free > 0 AND (v_unlimited OR NOT v_grouped) THEN
      v_ids := ARRAY(
        SELECT id FROM ${T}
        WHERE state = 'pending' AND hashtext(queue) = v_hash AND queue = p_queue AND run_at <= v_now
        ORDER BY priority DESC, run_at, id
        LIMIT v_free
        FOR UPDATE SKIP LOCKED);
    ELSIF v_free > 0 THEN
      v_cursor := r.group_cursor;
      v_key := v_cursor;
      -- NOTE: the active jobs of every group at once (one scan of the limits index, bounded by the
      -- jobs running under limits), so the walk below asks nothing per group for concurrency.
      IF v_grc IS NOT NULL THEN
        SELECT COALESCE(array_agg(a.group_key), '{}'), COALESCE(array_agg(a.n), '{}') INTO v_akeys, v_an
          FROM (SELECT group_key, count(*)::int AS n FROM ${T}
                WHERE state = 'active' AND limits_held AND hashtext(queue) = v_hash AND queue = p_queue AND group_key IS NOT NULL
                GROUP BY group_key) AS a;
      END IF;
      <<walk>>
      LOOP
        EXIT WHEN cardinality(v_ids) + cardinality(v_heads) >= v_free;
        IF v_examined >= ${GROUP_WALK_CAP} THEN
          v_more := true;
          EXIT;
        END IF;
        -- The next groups after v_key, as many as it takes to find one with a free slot per slot
        -- left (groups whose rate window is full may need another round of this), in one
        -- statement: a claim does not pay a statement per group examined.
        v_want := v_free - cardinality(v_ids) - cardinality(v_heads);
        v_steps := ${GROUP_WALK_CAP} - v_examined;
        -- NOTE: two statements, not one with "v_key IS NULL OR group_key > v_key": that OR
        -- cannot bound the index scan, which then reads every entry of the groups before v_key
        -- (measured: 55 ms a claim with 10 groups of 2,000 jobs, against under 1 ms).
        IF v_key IS NULL THEN
          ${groupBatch('j.group_key IS NOT NULL')}
        ELSE
          ${groupBatch('j.group_key > v_key')}
        END IF;
        v_n := COALESCE(cardinality(v_bk), 0);
        FOR v_i IN 1..v_n LOOP
          v_next := v_bk[v_i];
          -- Once round: after wrapping to the first group, up to where this walk began.
          EXIT walk WHEN v_wrapped AND v_next > v_cursor;
          EXIT walk WHEN cardinality(v_ids) + cardinality(v_heads) >= v_free;
          IF v_examined >= ${GROUP_WALK_CAP} THEN
            v_more := true;
            EXIT walk;
          END IF;
          v_key := v_next;
          v_examined := v_examined + 1;
          v_slots := v_free - cardinality(v_ids) - cardinality(v_heads);
          IF v_grc IS NOT NULL THEN
            v_slots := LEAST(v_slots, v_grc - COALESCE(v_an[array_position(v_akeys, v_next)], 0));
          END IF;
          -- NOTE: a group has a row only once rate limited (its window, a RateLimitedError block).
          IF v_slots > 0 AND (v_grmax IS NOT NULL OR v_group_blocks) THEN
            SELECT * INTO g FROM ${G} WHERE queue = p_queue AND group_key = v_next FOR UPDATE;
            IF FOUND AND g.rate_limited_until > v_now THEN
              v_slots := 0;
              v_wait := LEAST(COALESCE(v_wait, 2147483647), ${ms('g.rate_limited_until - v_now')});
            ELSIF v_grmax IS NOT NULL THEN
              IF FOUND THEN
                ${pruneLog('g', 'v_grper', 'v_log')}
              ELSE
                v_log_at := '{}'; v_log_n := '{}'; v_used := 0;
              END IF;
              IF v_grmax - v_used <= 0 THEN
                v_wait := LEAST(COALESCE(v_wait, 2147483647), ${ms(`COALESCE(v_oldest, v_now) + v_grper * interval '1 millisecond' - v_now`)});
              END IF;
              v_slots := LEAST(v_slots, v_grmax - v_used);
            END IF;
          END IF;
          IF v_slots = 1 AND v_bd[v_i] THEN
            -- The common case of serial groups: the group's first job in claim order (found by the
            -- walk) is due; locked by primary key with the other groups' heads after the walk.
            v_heads := v_heads || v_bh[v_i];
            v_hkeys := v_hkeys || v_next;
          ELSIF v_slots > 0 THEN
            ${takeFromGroup('v_next', 'v_slots')}
          END IF;
        END LOOP;
        IF v_found < v_want AND v_n < v_steps THEN
          -- The end of the groups: once round to the start, up to where this walk began.
          EXIT WHEN v_wrapped OR v_cursor IS NULL;
          v_wrapped := true;
          v_key := NULL;
        END IF;
      END LOOP;
      -- The heads, locked together (waited for, never skipped, as in takeFromGroup). A head that
      -- is no longer pending once its lock is had (cancelled, deleted) leaves its turn to the
      -- group's next job.
      IF cardinality(v_heads) > 0 THEN
        v_take := ARRAY(SELECT id FROM ${T} WHERE id = ANY(v_heads) AND state = 'pending' ORDER BY id FOR UPDATE);
        FOR v_i IN 1..cardinality(v_heads) LOOP
          IF v_heads[v_i] = ANY(v_take) THEN
            v_ids := v_ids || v_heads[v_i];
            v_gkeys := v_gkeys || v_hkeys[v_i];
            v_gn := v_gn || 1;
          ELSE
            ${takeFromGroup('v_hkeys[v_i]', '1')}
          END IF;
        END LOOP;
      END IF;
      -- Jobs without a group (group limits do not apply to them) take the slots the groups left,
      -- from the head of the queue in claim order (a bounded scan).
      IF cardinality(v_ids) < v_free THEN
        v_ids := v_ids || ARRAY(
          SELECT h.id FROM ${T} AS h WHERE h.id IN (
            SELECT id FROM ${T}
            WHERE state = 'pending' AND hashtext(queue) = v_hash AND queue = p_queue AND run_at <= v_now
            ORDER BY priority DESC, run_at, id
            LIMIT LEAST(${UNGROUPED_SCAN_ROWS}, 2 * (v_free - cardinality(v_ids)) + 16))
          AND h.group_key IS NULL AND h.state = 'pending'
          ORDER BY h.priority DESC, h.run_at, h.id
          LIMIT v_free - cardinality(v_ids)
          FOR UPDATE OF h SKIP LOCKED);
      END IF;
      UPDATE ${R} SET group_cursor = v_key WHERE name = p_queue AND group_cursor IS DISTINCT FROM v_key;
    END IF;

    -- NOTE: the start time of this claim's jobs and of its entries in the rate logs, read after
    -- every count: a job that ended (committed) before a count ended before this time, so a serial
    -- group's recorded attempts never overlap. Windows were computed at v_now, a little earlier:
    -- that only keeps entries longer (never lets more start).
    v_start := clock_timestamp();
    IF v_rmax IS NOT NULL AND cardinality(v_ids) > 0 THEN
      UPDATE ${R} SET rate_log_at = v_qlog_at || v_start, rate_log_n = v_qlog_n || cardinality(v_ids) WHERE name = p_queue;
    END IF;
    IF v_grmax IS NOT NULL AND cardinality(v_gkeys) > 0 THEN
      INSERT INTO ${G} AS x (queue, group_key, rate_log_at, rate_log_n)
      SELECT p_queue, t.k, ARRAY[v_start], ARRAY[t.c] FROM unnest(v_gkeys, v_gn) AS t(k, c)
      ON CONFLICT (queue, group_key) DO UPDATE SET
        rate_log_at = ARRAY(SELECT l.a FROM unnest(x.rate_log_at, x.rate_log_n) WITH ORDINALITY AS l(a, c, i) WHERE l.a > ${kept('v_grper')} ORDER BY l.i) || v_start,
        rate_log_n = ARRAY(SELECT l.c FROM unnest(x.rate_log_at, x.rate_log_n) WITH ORDINALITY AS l(a, c, i) WHERE l.a > ${kept('v_grper')} ORDER BY l.i) || EXCLUDED.rate_log_n[1],
        updated_at = now();
    END IF;
    IF v_gc IS NOT NULL THEN
      IF v_starved THEN
        UPDATE ${R} SET hungry_by = p_worker, hungry_until = v_now + interval '1 second' WHERE name = p_queue;
      ELSIF r.hungry_by = p_worker THEN
        UPDATE ${R} SET hungry_by = NULL, hungry_until = NULL WHERE name = p_queue;
      END IF;
      -- The hungry worker holds nothing, so nothing of its own ends to make it claim: wake it.
      IF v_wake THEN
        PERFORM pg_notify('${n.channel}', json_build_object('t', 'job', 'q', p_queue, 'in', 0)::text);
      END IF;
    END IF;
    RETURN QUERY WITH claimed AS (
      UPDATE ${T} AS j SET
        state = 'active', attempts = j.attempts + 1, claims = j.claims + 1, locked_by = p_worker,
        locked_until = v_start + p_lock_ms * interval '1 millisecond', started_at = v_start, limits_held = NOT v_unlimited,
        max_attempts = COALESCE(j.max_attempts, p_max_attempts), backoff = COALESCE(j.backoff, p_backoff),
        timeout_ms = COALESCE(j.timeout_ms, p_timeout_ms)
      WHERE j.id = ANY(v_ids)
      RETURNING ${claimedColumns('j.', { maxAttempts: 'p_max_attempts', backoff: 'p_backoff', timeoutMs: 'p_timeout_ms' })}, j.trace_context
    )
    SELECT c.*, NULL::integer, NULL::boolean, NULL::boolean, NULL::boolean, NULL::boolean FROM claimed AS c;
    RETURN QUERY SELECT ${noJob}, v_wait, v_more OR cardinality(v_ids) >= p_limit, NOT v_unlimited, v_full, NOT v_unlimited AND ${permitsApply('r', 'v_now')};
  END
  $pgq$`;
}

/**
 * Completes attempts of a limited queue and claims its next jobs in one round trip:
 * `complete_claim_limited(<claim_limited's parameters>, ids, claims, results)`. The completion is
 * `complete`'s (see the job statements): fenced per job by claim and worker, `results` NULL when
 * every result is JSON null. Then it returns what `claim_limited` returns, with one more column,
 * `out_written`, set on the last row only: the ids completed, comma-separated (NULL when none).
 *
 * NOTE: why one function: under limits a job counts until its outcome is written, so a process
 * whose jobs are quick spends two round trips per batch (write the outcomes, then claim the slots
 * they freed); here the claim, a later statement of the same transaction, already sees those jobs
 * completed. One transaction: a failure writes neither, and the caller writes the outcomes alone.
 *
 * NOTE: the completions are written before the registry row is locked (the claim locks it), so
 * the time a claim holds the queue's turn does not include them: measured +6 to +10 % on the
 * two-process drain of 200 serial groups (three alternating pairs of three drains, 8,111-9,248
 * against 8,980-9,802 jobs/s). The price: while such a statement waits for its turn it holds its
 * completed rows, so if the caller gives up on it (its bound) and writes the outcomes by the plain
 * completion, that write waits until the statement has run once it got its turn (carried out, or
 * rolled back with its lost connection): as long as another transaction holds the queue's registry
 * row, which blocks the queue's limited claims anyway. No job is lost or written twice either way:
 * the completion is fenced by claim and worker (see docs/guarantees.md, "Bounded calls").
 */
function completeAndClaimFunction(n: TableNaming): string {
  const T = n.qualified;
  return `CREATE OR REPLACE FUNCTION ${completeAndClaimFunctionName(n)}(
    p_queue text, p_limit integer, p_worker text, p_lock_ms integer, p_max_attempts integer, p_backoff jsonb, p_timeout_ms integer,
    p_ids bigint[], p_claims integer[], p_results jsonb[])
  RETURNS TABLE (${jobColumnsOut}, out_wait_ms integer, out_more boolean, out_limited boolean, out_full boolean, out_permits boolean, out_written text)
  LANGUAGE plpgsql VOLATILE AS $pgq$
  DECLARE
    v_written text;
  BEGIN
    WITH written AS (
      UPDATE ${T} AS j SET
        state = 'completed', result = COALESCE(u.result, 'null'::jsonb), finished_at = now(), locked_by = NULL, locked_until = NULL
      FROM unnest(p_ids, p_claims, p_results) AS u(id, claim, result)
      WHERE j.id = u.id AND j.claims = u.claim AND j.state = 'active' AND j.locked_by = p_worker
      RETURNING j.id
    )
    SELECT array_to_string(array_agg(id), ',') INTO v_written FROM written;
    RETURN QUERY SELECT c.*, CASE WHEN c.out_id IS NULL THEN v_written END
      FROM ${limitedClaimFunctionName(n)}(p_queue, p_limit, p_worker, p_lock_ms, p_max_attempts, p_backoff, p_timeout_ms) AS c;
  END
  $pgq$`;
}

/**
 * A worker's share of a queue's global concurrency: `acquire_permit(queue, worker, wants, lease
 * ms)` returns `out_slots`, how many jobs of the queue this worker may hold active at once until
 * its permit lapses (`lease ms` from now, unless acquired again); `out_share`, its fair share (it
 * may get less for now, while other workers still hold more than theirs); `out_mode`: 'permits',
 * or 'limited' / 'plain' when permits do not apply to the queue (any other limit, a group block;
 * no limit at all), and then this worker's permit is gone.
 *
 * NOTE: why permits: under a global concurrency limit alone, claims that take turns on the
 * registry row (the limited claim) cap the whole queue at one claim at a time. With a permit a
 * worker claims on its own (`completeAndClaimPermitted`, no registry lock): it takes at most its
 * slots less its active jobs. The limit holds because, under the registry row's lock and with
 * every permit row locked (waiting for the permitted claims in flight), each worker counts as the
 * larger of its permit and its active jobs, and the permits given out never add up past the limit.
 * A permit only ever comes down by someone else (to its holder's fair share); it goes up by its
 * holder's own acquire.
 *
 * Fair division (water-filling): the workers with a live permit and this one, by what each wants
 * (its concurrency): each gets at most what it wants, and the rest is divided evenly among the others.
 */
function acquirePermitFunction(n: TableNaming): string {
  const T = n.qualified;
  const R = n.queuesQualified;
  const P = n.permitsQualified;
  return `CREATE OR REPLACE FUNCTION ${acquirePermitFunctionName(n)}(p_queue text, p_worker text, p_wants integer, p_lock_ms integer)
  RETURNS TABLE (out_slots integer, out_share integer, out_mode text)
  LANGUAGE plpgsql VOLATILE AS $pgq$
  DECLARE
    r record;
    v_now timestamptz;
    v_gc integer;
    v_w text[]; v_wants integer[]; v_share integer[] := '{}';
    v_left integer; v_k integer; v_i integer;
    v_mine integer := 0; v_used integer; v_slots integer;
    v_registered boolean;
  BEGIN
    SELECT * INTO r FROM ${R} WHERE name = p_queue FOR UPDATE;
    v_registered := FOUND;
    v_now := clock_timestamp();
    IF NOT v_registered OR NOT ${permitsApply('r', 'v_now')} THEN
      DELETE FROM ${P} WHERE queue = p_queue AND worker = p_worker;
      RETURN QUERY SELECT 0, 0, CASE WHEN v_registered AND (r.limited OR COALESCE(r.group_blocked_until > v_now, false)) THEN 'limited' ELSE 'plain' END;
      RETURN;
    END IF;
    v_gc := (${effectiveLimit('r', 'globalConcurrency')} #>> '{}')::int;
    -- Lapsed permits (their workers' active jobs still count, below), then every permit locked.
    DELETE FROM ${P} WHERE queue = p_queue AND until <= v_now;
    PERFORM 1 FROM ${P} WHERE queue = p_queue FOR UPDATE;
    SELECT array_agg(c.w ORDER BY c.wants, c.w), array_agg(c.wants ORDER BY c.wants, c.w) INTO v_w, v_wants
      FROM (SELECT worker AS w, wants FROM ${P} WHERE queue = p_queue AND worker <> p_worker
            UNION ALL SELECT p_worker, GREATEST(p_wants, 0)) AS c;
    v_left := v_gc;
    v_k := cardinality(v_w);
    FOR v_i IN 1..v_k LOOP
      v_share := v_share || LEAST(v_wants[v_i], v_left / (v_k - v_i + 1));
      v_left := v_left - v_share[v_i];
      IF v_w[v_i] = p_worker THEN v_mine := v_share[v_i]; END IF;
    END LOOP;
    -- Others above their fair share come down to it (they take no more; what they hold ends).
    UPDATE ${P} AS p SET slots = s.share FROM unnest(v_w, v_share) AS s(w, share)
      WHERE p.queue = p_queue AND p.worker = s.w AND p.worker <> p_worker AND p.slots > s.share;
    -- What the others hold: each the larger of its permit and its active jobs (a worker without a
    -- permit, e.g. one that died or claims without, by its active jobs).
    SELECT COALESCE(sum(GREATEST(COALESCE(a.n, 0), COALESCE(p.slots, 0))), 0)::int INTO v_used
      FROM (SELECT locked_by AS w, count(*)::int AS n FROM ${T}
            WHERE state = 'active' AND limits_held AND hashtext(queue) = hashtext(p_queue) AND queue = p_queue GROUP BY locked_by) AS a
      FULL JOIN (SELECT worker AS w, slots FROM ${P} WHERE queue = p_queue) AS p USING (w)
      WHERE w IS DISTINCT FROM p_worker;
    v_slots := GREATEST(0, LEAST(v_mine, v_gc - v_used));
    INSERT INTO ${P} (queue, worker, slots, wants, total, until)
      VALUES (p_queue, p_worker, v_slots, GREATEST(p_wants, 0), v_gc, v_now + p_lock_ms * interval '1 millisecond')
      ON CONFLICT (queue, worker) DO UPDATE SET slots = EXCLUDED.slots, wants = EXCLUDED.wants, total = EXCLUDED.total, until = EXCLUDED.until;
    RETURN QUERY SELECT v_slots, v_mine, 'permits'::text;
  END
  $pgq$`;
}
