import type { JobError, JobProgress, JobState } from './job.interface';

/**
 * What can happen to a job, as `@OnQueueEvent` tells it:
 * - `active`: claimed; its handler starts.
 * - `progress`: its handler called `job.progress()` and the value was stored.
 * - `completed`: its handler returned; the result is stored.
 * - `failed`: failed for good (attempts spent, not retryable, or rescued with attempts spent).
 * - `retrying`: this attempt failed; it runs again after its backoff.
 * - `cancelled`: cancelled by `QueueService.cancel()`.
 * - `rescued`: its lease lapsed (its worker died or froze) and the rescuer put it back (`state`
 *   `pending`) or failed it (`state` `failed`, told as `failed` too).
 * - `blocked` / `unblocked`: it waits for its dependencies / they are done (flows).
 */
export type QueueEventType = 'active' | 'progress' | 'completed' | 'failed' | 'retrying' | 'cancelled' | 'rescued' | 'blocked' | 'unblocked';

/** Every {@link QueueEventType}, in the order of their wire codes (index + 1). Never reorder. */
export const QUEUE_EVENT_TYPES: readonly QueueEventType[] = ['active', 'progress', 'completed', 'failed', 'retrying', 'cancelled', 'rescued', 'blocked', 'unblocked'];

/** Where a listener hears events from. */
export type QueueEventScope = 'local' | 'global';

/** Options of `@OnQueueEvent`. */
export interface OnQueueEventOptions {
  /** Only events of this queue. Default: every queue. */
  queue?: string;
  /**
   * `local` (default): the events of what this process wrote (its worker's claims and outcomes,
   * its `cancel()` calls), told once the write is durable. `global`: the events of every process
   * of this table, through PostgreSQL NOTIFY: at most once per process, and missed while this
   * process's LISTEN connection is down. Global events carry no `result`, `error` or `progress`
   * (NOTIFY payloads are small): read the job with `getJob(event.jobId)`.
   */
  scope?: QueueEventScope;
}

/** One event, as a `@OnQueueEvent` method receives it. */
export interface QueueEvent {
  type: QueueEventType;
  jobId: string;
  queue: string;
  name: string;
  /** The job's state after the event (`pending` for `retrying`, `active` for `progress`). */
  state: JobState | `${JobState}`;
  /** The job's attempts when it happened. */
  attempts: number;
  /** When it happened (the clock of the process that wrote it). */
  at: Date;
  /** Where this event came from: this process's own writes, or any process's through NOTIFY. */
  scope: QueueEventScope;
  /** `completed`, local: what the handler returned. */
  result?: unknown;
  /** `failed` and `retrying`, local: the error stored. */
  error?: JobError;
  /** `progress`, local: the value stored. */
  progress?: JobProgress;
}
