import type { TableNaming } from '../table-naming';
import { JobState } from '../../interfaces/job.interface';
import type { JobStatements } from './job.statements';
import { StatementParams, indexableFilters, residualFilter, statePredicate, type JobQuery } from './job-search.statements';

/** The actions of the job management API that apply to many jobs at once. */
export type BulkAction = 'retry' | 'cancel' | 'delete' | 'promote';

/**
 * The states each action applies to; jobs in other states are left alone (and not counted).
 * NOTE: a state added to `JobState` joins `delete` by itself; the others name theirs.
 */
export const ACTION_STATES: Record<BulkAction, readonly JobState[]> = {
  retry: [JobState.Failed, JobState.Cancelled],
  cancel: [JobState.Pending, JobState.Active],
  // An active job is cancelled first (its worker is told), never deleted under its worker.
  delete: Object.values(JobState).filter((s) => s !== JobState.Active),
  promote: [JobState.Pending],
};

/**
 * Whether job `alias` is still needed by an unfinished job that depends on it (flows): such a job is
 * not deleted (its dependent would stay blocked forever), as retention keeps it too.
 */
export function neededByDependent(n: TableNaming, alias: string): string {
  return `(${alias}.has_dependents IS TRUE AND EXISTS (
    SELECT 1 FROM ${n.dependenciesQualified} AS x JOIN ${n.qualified} AS p ON p.id = x.job_id
    WHERE x.depends_on = ${alias}.id AND p.state NOT IN ('${JobState.Completed}', '${JobState.Failed}', '${JobState.Cancelled}')))`;
}

/** Deleting jobs takes their log entries and dependency rows along (CTEs after `gone`, which holds their ids). */
export function sideRowsOf(n: TableNaming, gone: string): string {
  return `gone_logs AS (DELETE FROM ${n.logsQualified} WHERE job_id IN (SELECT id FROM ${gone})),
    gone_edges AS (DELETE FROM ${n.dependenciesQualified} WHERE job_id IN (SELECT id FROM ${gone}) OR depends_on IN (SELECT id FROM ${gone}))`;
}

/** The single-job statements of the job management API ($1 the id). */
export function buildJobAdminStatements(n: TableNaming, base: Pick<JobStatements, 'jobColumns' | 'notifyJobs'>) {
  const { jobColumns } = base;
  const Q = n.qualified;
  return {
    /**
     * Delete job $1 unless it is active or an unfinished job depends on it, with its log entries and
     * dependency rows; returns it as it was (no row: not found, active, or still needed).
     */
    deleteOne: `
      WITH gone AS (
        DELETE FROM ${Q} AS t WHERE t.id = $1 AND ${statePredicate('t.state', ACTION_STATES.delete)} AND NOT ${neededByDependent(n, 't')}
        RETURNING ${jobColumns('t.')}
      ), ${sideRowsOf(n, 'gone')}
      SELECT * FROM gone`,

    /** Make pending job $1 due now (unless it already is) and wake its queue's workers. */
    promoteOne: `
      WITH promoted AS (
        UPDATE ${Q} SET run_at = LEAST(run_at, now()) WHERE id = $1 AND state = '${JobState.Pending}' RETURNING *
      ), woken AS (${base.notifyJobs('promoted')})
      SELECT ${jobColumns('promoted.')}, (SELECT count(*) FROM woken) AS "_woken" FROM promoted`,

    /**
     * Change data ($2 JSON text), priority ($3) and run time ($4) of job $1, each only when given
     * (not NULL), if and only if the job is still pending: fenced against a concurrent claim in
     * the one statement (a claim that locked the row first makes it active, which the re-checked
     * WHERE then refuses).
     */
    updateOne: `
      WITH updated AS (
        UPDATE ${Q} SET data = COALESCE($2::jsonb, data), priority = COALESCE($3::int, priority), run_at = COALESCE($4::timestamptz, run_at)
        WHERE id = $1 AND state = '${JobState.Pending}' RETURNING *
      ), woken AS (${base.notifyJobs('updated')})
      SELECT ${jobColumns('updated.')}, (SELECT count(*) FROM woken) AS "_woken" FROM updated`,
  };
}

export type JobAdminStatements = ReturnType<typeof buildJobAdminStatements>;

/** The jobs one batch of a bulk action looks at. */
export type BatchSource =
  | { ids: string[] }
  /** The next `batchSize` jobs by id after `after` that match the filter's indexable part. */
  | { query: JobQuery; after: string | null; batchSize: number };

/** What one batch statement returns. */
export interface BatchRow {
  /** The largest id looked at (filter batches: the next batch starts after it), or null: none left. */
  last: string | null;
  examined: number;
  affected: number;
  /** The queues of the jobs acted on (to wake this process's workers). */
  queues: string[] | null;
}

/**
 * One batch of a bulk action, one statement (its own transaction): the jobs looked at
 * (`examined`), the action on those it applies to (their state re-checked on the row it locks, so a
 * job that moved on meanwhile is left alone), and the notifications (workers of revived or promoted
 * jobs' queues; the workers running cancelled jobs, which abort them).
 */
export function buildBatchStatement(
  n: TableNaming,
  base: Pick<JobStatements, 'notifyJobs'>,
  action: BulkAction,
  source: BatchSource,
): { text: string; values: unknown[] } {
  const Q = n.qualified;
  const p = new StatementParams();
  const examined = examinedSelect(n, source, p);
  const applies = `${statePredicate('j.state', ACTION_STATES[action])}${action === 'promote' ? ' AND j.run_at > now()' : ''}`;
  // NOTE: cancel must know which jobs were active (to tell their workers): it locks them first, in
  // id order, and reads their state as locked. The others update straight from the examined ids
  // (in id order too); measured on 1,000,000 jobs, a retry batch of 1,000 took 15.7 ms instead of
  // 19 ms with that extra locking step. A deadlock with a worker's write is run again (see the repository).
  const target = action === 'cancel'
    ? `SELECT j.id, j.state FROM ${Q} AS j JOIN examined AS e ON e.id = j.id WHERE e.hit AND ${applies} ORDER BY j.id FOR UPDATE OF j`
    : `SELECT e.id FROM examined AS e WHERE e.hit`;
  const acted: Record<BulkAction, string> = {
    // NOTE: a job whose dependencies are not all settled (a flow parent failed by its child) is left
    // as it is: retry the dependency instead, as retry() says (the flow trigger then blocks it again).
    retry: `UPDATE ${Q} AS j SET state = '${JobState.Pending}', attempts = 0, run_at = now(), finished_at = NULL, result = NULL, locked_by = NULL, locked_until = NULL
      FROM target WHERE j.id = target.id AND ${applies} AND COALESCE(j.deps_pending, 0) = 0 RETURNING j.id, j.queue, j.run_at`,
    promote: `UPDATE ${Q} AS j SET run_at = now() FROM target WHERE j.id = target.id AND ${applies} RETURNING j.id, j.queue, j.run_at`,
    cancel: `UPDATE ${Q} AS j SET state = '${JobState.Cancelled}', finished_at = now(), locked_by = NULL, locked_until = NULL
      FROM target WHERE j.id = target.id RETURNING j.id, j.queue, target.state AS prev_state`,
    delete: `DELETE FROM ${Q} AS j USING target WHERE j.id = target.id AND ${applies} AND NOT ${neededByDependent(n, 'j')} RETURNING j.id, j.queue`,
  };
  const woken: Record<BulkAction, string> = {
    retry: base.notifyJobs('acted'),
    promote: base.notifyJobs('acted'),
    // NOTE: as `cancel()`: the worker running an active job hears it and aborts the handler.
    cancel: `SELECT pg_notify('${n.channel}', json_build_object('t', 'cancel', 'id', id::text)::text) FROM acted WHERE prev_state = '${JobState.Active}'`,
    delete: 'SELECT 1 WHERE false',
  };
  const text = `
    WITH examined AS (${examined}),
    target AS (${target}),
    acted AS (${acted[action]}),${action === 'delete' ? `
    ${sideRowsOf(n, 'acted')},` : ''}
    woken AS (${woken[action]})
    SELECT (SELECT max(id) FROM examined)::text AS last, (SELECT count(*) FROM examined)::int AS examined,
      (SELECT count(*) FROM acted)::int AS affected, (SELECT array_agg(DISTINCT queue) FROM acted) AS queues,
      (SELECT count(*) FROM woken) AS "_woken"`;
  return { text, values: p.values };
}

/** The jobs a batch looks at, with whether each matches the filter's row-by-row part (`hit`). */
function examinedSelect(n: TableNaming, source: BatchSource, p: StatementParams): string {
  if ('ids' in source) return `SELECT DISTINCT unnest(${p.add(source.ids, 'bigint[]')}) AS id, true AS hit`;
  const where = indexableFilters(source.query, p);
  if (source.after !== null) where.push(`t.id > ${p.add(source.after, 'bigint')}`);
  const hit = residualFilter(source.query, p, 't') ?? 'true';
  return `SELECT t.id, (${hit}) AS hit FROM ${n.qualified} AS t WHERE ${where.join(' AND ') || 'true'} ORDER BY t.id LIMIT ${p.add(source.batchSize, 'int')}`;
}

/**
 * The ids a batch would act on (matching, in the action's states), and what it looks at: for a
 * batch that must be redone job by job (a retry whose jobs' unique keys collide).
 */
export function buildBatchIdsStatement(n: TableNaming, action: BulkAction, source: BatchSource): { text: string; values: unknown[] } {
  const p = new StatementParams();
  const text = `
    WITH examined AS (${examinedSelect(n, source, p)})
    SELECT (SELECT max(id) FROM examined)::text AS last, (SELECT count(*) FROM examined)::int AS examined,
      (SELECT array_agg(j.id::text ORDER BY j.id) FROM ${n.qualified} AS j JOIN examined AS e ON e.id = j.id
       WHERE e.hit AND ${statePredicate('j.state', ACTION_STATES[action])}) AS ids`;
  return { text, values: p.values };
}
