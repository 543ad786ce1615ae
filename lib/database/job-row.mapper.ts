import { JobState, type Job } from '../interfaces/job.interface';

/**
 * A row as the job statements return it: `bigint` as string, `jsonb` parsed, and timestamps as
 * epoch milliseconds (see `jobColumns` in the statements).
 */
export interface RawJobRow {
  id: string;
  queue: string;
  name: string;
  data: unknown;
  state: string;
  priority: number;
  run_at: number;
  attempts: number;
  claims: number;
  max_attempts: number | null;
  backoff: Job['backoff'];
  timeout_ms: number | null;
  result: unknown;
  last_error: Job['lastError'];
  locked_by: string | null;
  locked_until: number | null;
  unique_key: string | null;
  group_key: string | null;
  scheduled_for: number | null;
  schedule_key: string | null;
  parent_id: string | null;
  created_at: number;
  started_at: number | null;
  finished_at: number | null;
  /** Schema step 5; absent from rows of statements that do not select it. */
  progress?: unknown;
}

export function toJob<T = unknown, R = unknown>(row: RawJobRow): Job<T, R> {
  return {
    id: row.id,
    queue: row.queue,
    name: row.name,
    data: row.data as T,
    state: row.state as JobState,
    attempts: row.attempts,
    claims: row.claims,
    maxAttempts: row.max_attempts,
    priority: row.priority,
    runAt: new Date(row.run_at),
    backoff: row.backoff,
    timeoutMs: row.timeout_ms,
    createdAt: new Date(row.created_at),
    startedAt: toDate(row.started_at),
    finishedAt: toDate(row.finished_at),
    result: row.result as R | null,
    lastError: row.last_error,
    uniqueKey: row.unique_key ?? null,
    group: row.group_key ?? null,
    scheduledFor: toDate(row.scheduled_for ?? null),
    scheduleKey: row.schedule_key ?? null,
    lockedBy: row.locked_by,
    parentId: row.parent_id ?? null,
    lockedUntil: toDate(row.locked_until),
    progress: (row.progress ?? null) as Job['progress'],
  };
}

/** What a claim knows of all the jobs it takes (see `claimedColumns` in the statements). */
export interface ClaimContext {
  queue: string;
  workerId: string;
  lockDurationMs: number;
  /** The processor's defaults the claim fixed into jobs that had none (`backoff` as stored, through JSON). */
  maxAttempts: number;
  backoff: Readonly<NonNullable<Job['backoff']>>;
  timeoutMs: number | null;
}

/**
 * A claimed job from a row fetched with `rowMode: 'array'`, in the column order of `claimedColumns`
 * in the statements: node-postgres builds an array per row much more cheaply than an object with
 * named keys, and the claim returns a row per job. What every claimed row has in common (active,
 * leased to this worker, no result yet, the claim's queue and lease) is filled in here, and a
 * NULL run option means "the processor's default".
 */
export function toClaimedJob(v: unknown[], claim: ClaimContext): Job {
  const startedAt = v[12] as number;
  return {
    id: v[0] as string,
    queue: claim.queue,
    name: v[1] as string,
    data: v[2],
    state: JobState.Active,
    priority: v[3] as number,
    attempts: v[4] as number,
    claims: v[5] as number,
    maxAttempts: (v[6] as number | null) ?? claim.maxAttempts,
    // NOTE: a copy per job (its fields are all primitives), as a parsed row would give.
    backoff: (v[7] as Job['backoff']) ?? { ...claim.backoff },
    timeoutMs: (v[8] as number | null) ?? claim.timeoutMs,
    result: null,
    lastError: v[9] as Job['lastError'],
    uniqueKey: v[13] as string | null,
    group: v[14] as string | null,
    scheduledFor: toDate(v[15] as number | null),
    scheduleKey: v[16] as string | null,
    lockedBy: claim.workerId,
    parentId: v[17] as string | null,
    runAt: new Date(v[10] as number),
    lockedUntil: new Date(startedAt + claim.lockDurationMs),
    createdAt: new Date(v[11] as number),
    startedAt: new Date(startedAt),
    finishedAt: null,
  };
}

function toDate(ms: number | null): Date | null {
  return ms === null ? null : new Date(ms);
}

/**
 * Puts claimed jobs in claim order (priority first, then run time, then id), in place.
 *
 * NOTE: an UPDATE … RETURNING gives its rows in the order it visited them (id order through the
 * primary key, or the heap's order through a bitmap scan), not the claim's ORDER BY. Jobs beyond
 * the free slots wait in the claim-ahead buffer in this order, so a higher-priority job claimed
 * in the same batch as lower ones must come first. Already in order is the common case: checked
 * in one pass before any sort.
 */
export function inClaimOrder(jobs: Job[]): Job[] {
  for (let i = 1; i < jobs.length; i++) {
    if (compareClaimOrder(jobs[i - 1], jobs[i]) > 0) return jobs.sort(compareClaimOrder);
  }
  return jobs;
}

function compareClaimOrder(a: Job, b: Job): number {
  return b.priority - a.priority || a.runAt.getTime() - b.runAt.getTime() || compareIds(a.id, b.id);
}

/** Compares two bigint ids held as decimal strings (no leading zeros). */
function compareIds(a: string, b: string): number {
  return a.length - b.length || (a < b ? -1 : a > b ? 1 : 0);
}
