import type { TableNaming } from '../table-naming';

/**
 * The statements of flows and dependencies (schema step 5, see v5/flows.ddl.ts): inserting a flow
 * or a job with dependencies, and reading a job's children. Settling dependents when a dependency
 * ends is the flow trigger's, in the statement that ends it.
 */
export function buildFlowStatements(n: TableNaming) {
  const Q = n.qualified;
  const D = n.dependenciesQualified;
  const ms = (column: string, as: string) => `floor(date_part('epoch', ${column}) * 1000 + 0.0005) AS ${as}`;
  // What a blocked job's error says when a dependency already failed (as the trigger writes it).
  const dependencyFailed = (alias: string) =>
    `jsonb_build_object('name', 'JobDependencyFailedError',
       'message', format('Dependency %s (queue "%s", name "%s") ended %s', ${alias}.id, ${alias}.queue, ${alias}.name, ${alias}.state),
       'dependencyId', ${alias}.id::text, 'dependencyState', ${alias}.state, 'attempt', 0, 'at', now())`;
  const wake = (rows: string) =>
    `SELECT pg_notify('${n.channel}', json_build_object('t', 'job', 'q', queue, 'in',
       GREATEST(0, ceil(extract(epoch FROM min(run_at) - now()) * 1000)))::text)
     FROM ${rows} GROUP BY queue`;

  return {
    /**
     * Insert a whole flow in one statement: $1 is a JSON array of its jobs in pre-order, each with
     * its position `ord`, its parent's `parent_ord` (null for the root), its number of `children`
     * and its `on_child_failure`. Ids are taken in that order (the root's is the smallest); a job
     * with children is blocked on them, a leaf is pending. Returns the ids in input order and now().
     */
    insertFlow: `
      WITH u AS (
        SELECT * FROM jsonb_to_recordset($1::jsonb) AS u(ord int, parent_ord int, children int, on_child_failure text,
          queue text, name text, data jsonb, priority int, run_at timestamptz, delay_ms bigint, max_attempts int, backoff jsonb, timeout_ms int,
          group_key text, trace_context jsonb)
      ), ids AS MATERIALIZED (
        SELECT o.ord, nextval(pg_get_serial_sequence('${Q}', 'id')) AS id FROM (SELECT ord FROM u ORDER BY ord) AS o
      ), ins AS (
        INSERT INTO ${Q} ("id", "queue", "name", "data", "priority", "run_at", "max_attempts", "backoff", "timeout_ms", "group_key", "trace_context",
          "state", "parent_id", "deps_pending", "has_dependents", "on_child_failure")
        SELECT i.id, u.queue, u.name, COALESCE(u.data, 'null'::jsonb), u.priority, COALESCE(u.run_at, now() + u.delay_ms * interval '1 millisecond'),
          u.max_attempts, u.backoff, u.timeout_ms, u.group_key, u.trace_context,
          CASE WHEN u.children > 0 THEN 'blocked' ELSE 'pending' END, p.id, CASE WHEN u.children > 0 THEN u.children END,
          CASE WHEN u.parent_ord IS NOT NULL THEN true END, u.on_child_failure
        FROM u JOIN ids AS i ON i.ord = u.ord LEFT JOIN ids AS p ON p.ord = u.parent_ord
        ORDER BY u.ord
        RETURNING id, queue, run_at, state, parent_id
      ), edges AS (
        INSERT INTO ${D} ("job_id", "depends_on") SELECT parent_id, id FROM ins WHERE parent_id IS NOT NULL RETURNING 1
      ), woken AS (${wake(`ins WHERE state = 'pending'`)})
      SELECT (SELECT string_agg(id::text, ',' ORDER BY ord) FROM ids) AS ids, ${ms('now()', 'now')},
        (SELECT count(*) FROM woken) AS "_woken", (SELECT count(*) FROM edges) AS "_edges"`,

    /**
     * Insert one job that depends on the jobs $10 (distinct ids), $11 its onChildFailure, $12 its
     * group, $13 its trace context; $1-$9 as `insertOne`'s. Nothing is stored unless every one exists (no row then). The dependencies are
     * locked and marked as having dependents, so one that ends meanwhile either ended before (and
     * is counted as such here) or waits for this insert and then settles it. The job is blocked on
     * those not completed yet; pending when none is left; failed at once, naming it, when one has
     * already failed for good or was cancelled (and failures fail it). Returns its id, state and now().
     */
    insertDependent: `
      WITH wanted AS (
        SELECT unnest($10::bigint[]) AS id
      ), marked AS (
        UPDATE ${Q} AS d SET has_dependents = true FROM wanted AS w
        WHERE d.id = w.id AND (SELECT count(*) FROM ${Q} WHERE id IN (SELECT id FROM wanted)) = cardinality($10::bigint[])
        RETURNING d.id, d.queue, d.name, d.state,
          d.state = 'completed' OR ($11::text = 'continue' AND d.state IN ('failed', 'cancelled')) AS settled
      ), verdict AS (
        SELECT count(*) AS n, count(*) FILTER (WHERE NOT settled)::int AS open FROM marked
      ), culprit AS (
        SELECT id, queue, name, state FROM marked WHERE NOT settled AND state IN ('failed', 'cancelled') ORDER BY id LIMIT 1
      ), ins AS (
        INSERT INTO ${Q} AS j ("queue", "name", "data", "priority", "run_at", "max_attempts", "backoff", "timeout_ms", "group_key", "trace_context",
          "state", "deps_pending", "on_child_failure", "finished_at", "last_error")
        SELECT $1, $2, $3::jsonb, $4, COALESCE($5::timestamptz, now() + $6 * interval '1 millisecond'), $7, $8::jsonb, $9, $12::text, $13::jsonb,
          CASE WHEN c.id IS NOT NULL THEN 'failed' WHEN v.open > 0 THEN 'blocked' ELSE 'pending' END,
          v.open, $11::text, CASE WHEN c.id IS NOT NULL THEN now() END,
          CASE WHEN c.id IS NOT NULL THEN ${dependencyFailed('c')} END
        FROM verdict AS v LEFT JOIN culprit AS c ON true WHERE v.n = cardinality($10::bigint[])
        RETURNING j.id, j.queue, j.run_at, j.state, j.last_error
      ), edges AS (
        INSERT INTO ${D} ("job_id", "depends_on", "settled") SELECT ins.id, m.id, m.settled FROM ins, marked AS m RETURNING 1
      ), woken AS (${wake(`ins WHERE state = 'pending'`)})
      SELECT ins.id::text, ins.state, ins.last_error, ${ms('now()', 'now')}, (SELECT count(*) FROM woken) AS "_woken",
        (SELECT count(*) FROM edges) AS "_edges"
      FROM ins`,

    /** Which of the ids $1 exist (to name the missing ones after a refused `insertDependent`). */
    existingIds: `SELECT id::text FROM ${Q} WHERE id = ANY($1::bigint[])`,

    /** The children / dependencies of job $1, in id order. */
    children: `
      SELECT j.id::text, j.queue, j.name, j.state, j.result, j.last_error
      FROM ${D} AS x JOIN ${Q} AS j ON j.id = x.depends_on
      WHERE x.job_id = $1
      ORDER BY j.id`,
  };
}

export type FlowStatements = ReturnType<typeof buildFlowStatements>;
