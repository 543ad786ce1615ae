import type { Job, JobState } from '../interfaces/job.interface';

/** A row as node-postgres returns it (`bigint` as string, `timestamptz` as Date, `jsonb` parsed). */
export interface RawJobRow {
  id: string;
  queue: string;
  name: string;
  data: unknown;
  state: string;
  priority: number;
  run_at: Date;
  attempts: number;
  claims: number;
  max_attempts: number | null;
  backoff: Job['backoff'];
  timeout_ms: number | null;
  result: unknown;
  last_error: Job['lastError'];
  locked_by: string | null;
  locked_until: Date | null;
  created_at: Date;
  started_at: Date | null;
  finished_at: Date | null;
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
    runAt: row.run_at,
    backoff: row.backoff,
    timeoutMs: row.timeout_ms,
    createdAt: row.created_at,
    startedAt: row.started_at,
    finishedAt: row.finished_at,
    result: row.result as R | null,
    lastError: row.last_error,
    lockedBy: row.locked_by,
    lockedUntil: row.locked_until,
  };
}
