import type { TableNaming } from '../table-naming';
import { JobState } from '../../interfaces/job.interface';
import type { JobSort } from '../../interfaces/job-admin.interface';
import type { JobStatements } from './job.statements';

/**
 * What to select, already validated (see `JobAdmin`): every field null means "any". States are
 * values of `JobState` only: they are spliced into the SQL as literals (checked again here), so a
 * partial index whose predicate names states can be matched at plan time.
 */
export interface JobQuery {
  queue: string | null;
  states: readonly JobState[] | null;
  name: string | null;
  /** Exact id (a search for digits). */
  id: string | null;
  /** A LIKE pattern on the last error's name or message (already escaped and wrapped in `%`). */
  errorPattern: string | null;
  /** JSON text of a containment filter on data (`@>`). */
  data: string | null;
}

/** The states `lastFinished` lists, and which the finished index (schema step 1) holds. */
export const FINISHED_STATES: readonly JobState[] = [JobState.Completed, JobState.Failed, JobState.Cancelled];

/** A decoded page cursor: the keys of the last job of the previous page, in the sort's key order. */
export interface SortKeys {
  /** `nextToRun`: the priority. */
  priority?: number;
  /** `nextToRun`: run_at; `lastFinished`: finished_at; in epoch microseconds (exact). */
  micros?: string;
  id: string;
}

/** Positional parameters of one statement being built. */
export class StatementParams {
  readonly values: unknown[] = [];
  /** `$n` for `value`, typed with `cast`. */
  add(value: unknown, cast: string): string {
    this.values.push(value);
    return `$${this.values.length}::${cast}`;
  }
}

/** An SQL literal of a validated state. */
function stateLiteral(state: string): string {
  if (!/^[a-z_]+$/.test(state)) throw new Error(`nestjs-pg-queue: not a state: ${JSON.stringify(state)}`);
  return `'${state}'`;
}

/** `${column} = 's'` or `${column} IN ('s', 't')`. */
export function statePredicate(column: string, states: readonly string[]): string {
  if (states.length === 0) return 'false';
  return states.length === 1 ? `${column} = ${stateLiteral(states[0])}` : `${column} IN (${states.map(stateLiteral).join(', ')})`;
}

/** An exact timestamp from epoch microseconds (a bigint parameter). */
const fromMicros = (param: string) => `(timestamptz 'epoch' + ${param} * interval '1 microsecond')`;
/** Epoch microseconds of a timestamp, exact (extract works in numeric). */
const toMicros = (column: string) => `(extract(epoch FROM ${column}) * 1000000)::bigint`;

/**
 * The filters any index can serve (queue, name, states, id), on table alias `t`. With only the
 * `pending` state, the queue is matched through `hashtext(queue)` too: the claim index's first key.
 */
export function indexableFilters(q: JobQuery, p: StatementParams): string[] {
  const where: string[] = [];
  if (q.queue !== null) {
    const queue = p.add(q.queue, 'text');
    if (q.states?.length === 1 && q.states[0] === JobState.Pending) where.push(`hashtext(t.queue) = hashtext(${queue})`);
    where.push(`t.queue = ${queue}`);
  }
  if (q.states !== null) where.push(statePredicate('t.state', q.states));
  if (q.name !== null) where.push(`t.name = ${p.add(q.name, 'text')}`);
  if (q.id !== null) where.push(`t.id = ${p.add(q.id, 'bigint')}`);
  return where;
}

/** The filters evaluated row by row (containment, error text) on alias `a`, or null when none. */
export function residualFilter(q: JobQuery, p: StatementParams, a: string): string | null {
  const where: string[] = [];
  if (q.data !== null) where.push(`${a}.data @> ${p.add(q.data, 'jsonb')}`);
  if (q.errorPattern !== null) {
    const pattern = p.add(q.errorPattern, 'text');
    where.push(`(${a}.last_error->>'message' ILIKE ${pattern} OR ${a}.last_error->>'name' ILIKE ${pattern})`);
  }
  return where.length === 0 ? null : where.join(' AND ');
}

interface SortSpec {
  /** Key columns the scan outputs besides id (aliases `_kp`, `_kt`). */
  keys: string;
  /** ORDER BY on the table (alias t): the index's order. */
  tableOrder: string;
  /** ORDER BY on the scan's output columns. */
  keyOrder: string;
}

const SORTS: Record<JobSort, SortSpec> = {
  newest: { keys: '', tableOrder: 't.id DESC', keyOrder: 'id DESC' },
  oldest: { keys: '', tableOrder: 't.id', keyOrder: 'id' },
  // NOTE: the claim index's order (priority DESC, run_at, id); see `orderedScan`.
  nextToRun: { keys: `, t.priority AS _kp, ${toMicros('t.run_at')} AS _kt`, tableOrder: 't.priority DESC, t.run_at, t.id', keyOrder: '_kp DESC, _kt, id' },
  // NOTE: the finished index holds finished_at only; ties (a batch completes with one now()) are
  // put in id order by an incremental sort, which stays cheap.
  lastFinished: { keys: `, ${toMicros('t.finished_at')} AS _kt`, tableOrder: 't.finished_at DESC, t.id DESC', keyOrder: '_kt DESC, id DESC' },
};

/**
 * The jobs of `q` in `sort` order after `cursor`, as (id, keys[, data, last_error]), at most
 * `limit` (a parameter text): a scan in index order that stops after `limit` rows.
 */
function orderedScan(n: TableNaming, q: JobQuery, sort: JobSort, cursor: SortKeys | null, limit: string, p: StatementParams, withRowData: boolean): string {
  const spec = SORTS[sort];
  const select = `SELECT t.id${spec.keys}${withRowData ? ', t.data, t.last_error' : ''} FROM ${n.qualified} AS t`;
  const where = indexableFilters(q, p);
  const scan = (extra: string[], order = spec.tableOrder) =>
    `${select} WHERE ${[...where, ...extra].join(' AND ') || 'true'} ORDER BY ${order} LIMIT ${limit}`;
  if (!cursor) return scan([]);
  const id = p.add(cursor.id, 'bigint');
  switch (sort) {
    case 'newest':
      return scan([`t.id < ${id}`]);
    case 'oldest':
      return scan([`t.id > ${id}`]);
    case 'lastFinished': {
      const at = fromMicros(p.add(cursor.micros, 'bigint'));
      return scan([`t.finished_at <= ${at}`, `(t.finished_at, t.id) < (${at}, ${id})`]);
    }
    case 'nextToRun': {
      // NOTE: the keyset mixes directions (priority DESC, run_at and id ASC), which no single index
      // range expresses: the rest of the cursor's priority (a range on run_at, id) and the lower
      // priorities, each an index range that stops after `limit` rows, merged.
      const priority = p.add(cursor.priority, 'int');
      const at = fromMicros(p.add(cursor.micros, 'bigint'));
      return `SELECT * FROM ((${scan([`t.priority = ${priority}`, `(t.run_at, t.id) > (${at}, ${id})`], 't.run_at, t.id')})
        UNION ALL (${scan([`t.priority < ${priority}`])})) AS u ORDER BY ${spec.keyOrder} LIMIT ${limit}`;
    }
  }
}

/**
 * One page of `listJobs()`. Returns the page's rows (every job column, plus the sort keys `_kp`,
 * `_kt` and, with a residual filter, `_hit` and `_n`), at most `limit + 1` of them.
 *
 * Without a residual filter: the ordered scan, `limit + 1` rows (one more tells whether a next
 * page exists). With one (data containment, error text): the ordered scan examines at most
 * `scanLimit` rows, numbered; the page keeps those that match, plus the last examined row when the
 * scan reached `scanLimit` (`_n = scanLimit`), whose keys continue the search on the next page.
 * Rows are pulled lazily, so a page stops as soon as it has `limit + 1` matches.
 */
export function buildListStatement(
  n: TableNaming,
  base: Pick<JobStatements, 'jobColumns'>,
  q: JobQuery,
  sort: JobSort,
  cursor: SortKeys | null,
  limit: number,
  scanLimit: number,
): { text: string; values: unknown[] } {
  const p = new StatementParams();
  const spec = SORTS[sort];
  const pageSize = p.add(limit + 1, 'int');
  const keyColumns = spec.keys ? `${sort === 'nextToRun' ? 'page._kp, ' : ''}page._kt::text AS _kt` : '';
  let page: string;
  let extra = '';
  const residual = residualFilter(q, p, 's');
  if (residual === null) {
    page = orderedScan(n, q, sort, cursor, pageSize, p, false);
  } else {
    const scanned = p.add(scanLimit, 'int');
    page = `SELECT * FROM (
        SELECT s.*, (${residual}) AS _hit, row_number() OVER (ORDER BY ${spec.keyOrder.replace(/(^|, )(_k|id)/g, '$1s.$2')}) AS _n
        FROM (${orderedScan(n, q, sort, cursor, scanned, p, true)}) AS s
      ) AS w WHERE w._hit OR w._n = ${scanned} ORDER BY ${spec.keyOrder} LIMIT ${pageSize}`;
    extra = ', page._hit, page._n';
  }
  const text = `WITH page AS (${page})
    SELECT ${base.jobColumns('j.')}${keyColumns ? `, ${keyColumns}` : ''}${extra}
    FROM page JOIN ${n.qualified} AS j ON j.id = page.id
    ORDER BY ${spec.keyOrder.replace(/(^|, )(_k|id)/g, '$1page.$2')}`;
  return { text, values: p.values };
}
