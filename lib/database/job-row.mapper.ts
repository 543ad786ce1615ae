import type { Job, JobState } from '../interfaces/job.interface';

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
  created_at: number;
  started_at: number | null;
  finished_at: number | null;
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
    lockedBy: row.locked_by,
    lockedUntil: toDate(row.locked_until),
  };
}

function toDate(ms: number | null): Date | null {
  return ms === null ? null : new Date(ms);
}
