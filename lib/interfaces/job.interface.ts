import type { EntityManager } from 'typeorm';
import type { BackoffOptions } from './job-options.interface';
import type { JobSnooze } from '../worker/job-snooze';

/**
 * The states of a job. See docs/state-machine.md for the transitions.
 *
 * - `pending`: waiting to run: due now, scheduled for later, or waiting for a retry (`runAt` says when).
 * - `active`: claimed by a worker that holds its lease.
 * - `completed`: the handler returned; `result` holds what it returned.
 * - `failed`: attempts exhausted, or failed for good (no handler); the dead-letter state.
 * - `cancelled`: cancelled by `QueueService.cancel()`.
 * - `blocked`: waiting for its children (`addFlow`) or dependencies (`dependsOn`) to complete; it
 *   becomes `pending` when the last one completed (see docs/flows.md).
 */
export enum JobState {
  Pending = 'pending',
  Active = 'active',
  Completed = 'completed',
  Failed = 'failed',
  Cancelled = 'cancelled',
  Blocked = 'blocked',
}

/** The last failure of a job, as stored. A non-`Error` thrown value is recorded readably in `message`. */
export interface JobError {
  name: string;
  message: string;
  stack?: string;
  /** The attempt that failed (1-based). */
  attempt: number;
  /** When the failure was recorded (ISO 8601). */
  at: string;
}

/**
 * NOTE: `Job` and `ActiveJob` are interfaces merged with empty abstract classes so they also exist
 * as values. Handlers name them in decorated method signatures, and with `isolatedModules` (on in
 * new Nest apps) plus decorator metadata, TypeScript refuses a type-only symbol there unless it is
 * imported with `import type` (TS1272). Jobs are plain objects: do not use `instanceof Job`.
 */
// eslint-disable-next-line @typescript-eslint/no-extraneous-class, @typescript-eslint/no-unused-vars
export abstract class Job<T = unknown, R = unknown> {}

/** A job as stored in the job table. Returned by `QueueService.add()`, `getJob()` and friends. */
export interface Job<T = unknown, R = unknown> {
  /** The job's id: a PostgreSQL `bigint`, as a string so no precision is lost. */
  id: string;
  queue: string;
  name: string;
  data: T;
  state: JobState;
  /** Attempts started so far: 0 while it never ran, 1 during and after the first run. */
  attempts: number;
  /**
   * Times the job was claimed, ever. Unlike `attempts` it is never reset (by `retry()`) or refunded
   * (by a graceful shutdown), so it identifies one claim: outcome writes are fenced on it.
   */
  claims: number;
  /**
   * Attempts allowed. `null` while the job has not run and no explicit value was given: the
   * processor's default (or the module's) is fixed at the first claim.
   */
  maxAttempts: number | null;
  /** Higher runs first. */
  priority: number;
  /** When the job may run next (due time, or the retry time after a failure). */
  runAt: Date;
  /** The backoff used between attempts; `null` until fixed at the first claim, like `maxAttempts`. */
  backoff: BackoffOptions | null;
  /** The handler's time limit in ms; `null` means none. */
  timeoutMs: number | null;
  createdAt: Date;
  /** When the latest attempt started. */
  startedAt: Date | null;
  /** When the job reached `completed`, `failed` or `cancelled`. */
  finishedAt: Date | null;
  /** What the handler returned (JSON), once `completed`. */
  result: R | null;
  /** The last failure, kept after a later success too so flaky jobs can be seen. */
  lastError: JobError | null;
  /** The job's unique key (`unique.key` when it was added), or null. */
  uniqueKey: string | null;
  /** The job's group (the `group` option when it was added), or null. */
  group: string | null;
  /**
   * Set by `add()`/`addBulk()` on jobs given a unique key: true when the key was held and the
   * holder is returned instead of a new job.
   */
  duplicate?: boolean;
  /** For a run of a cron schedule: the slot it was enqueued for (a run of `triggerSchedule()`: the trigger's time); else null. */
  scheduledFor: Date | null;
  /** For a run of a cron schedule: the schedule's key; else null. */
  scheduleKey: string | null;
  /** The worker holding the lease while `active`. */
  lockedBy: string | null;
  /** The flow job this job is a child of (`addFlow`), or null. */
  parentId: string | null;
  /** When the lease lapses unless renewed by a heartbeat. */
  lockedUntil: Date | null;
  /**
   * The last value its handler gave `job.progress()` (a number 0–100 or a small JSON object), or
   * null. Set on the jobs of `getJob()`, `getJobs()` and `waitForJob()`; not on those `add()` returns.
   */
  progress?: JobProgress | null;
}

/** What `job.progress()` takes: a number from 0 to 100, or a small JSON object (at most 1 KB as JSON). */
export type JobProgress = number | object;

/** One entry of a job's log (`job.log()`), as `QueueService.getJobLogs()` returns it. */
export interface JobLogEntry {
  /** When the handler logged it (the worker's clock). */
  at: Date;
  /** The text, at most 2 KB of UTF-8 (longer ones are cut: see `truncated`). */
  message: string;
  /** True when the text was longer than 2 KB and was cut. */
  truncated: boolean;
}

/**
 * The job a handler receives: the stored job plus what only exists while it runs.
 */
// eslint-disable-next-line @typescript-eslint/no-extraneous-class, @typescript-eslint/no-unused-vars
export abstract class ActiveJob<T = unknown, R = unknown> {}
export interface ActiveJob<T = unknown, R = unknown> extends Job<T, R> {
  /**
   * Aborted when the job times out, is cancelled, loses its lease, or the worker shuts down past
   * `shutdownTimeoutMs`. `signal.reason` is a `JobTimeoutError`, `JobCancelledError`,
   * `JobLeaseLostError` or `WorkerShutdownError`. Pass it to `fetch()` and other abortable calls.
   */
  readonly signal: AbortSignal;
  /**
   * Runs `work` in a database transaction that also marks this job `completed` (with `work`'s return
   * value as the result) before it commits: the job's database effects and its completion are
   * committed together or not at all. If the lease was lost meanwhile (timed out, cancelled,
   * rescued), the transaction is rolled back and a `JobLeaseLostError` is thrown.
   * Call it at most once, as the last thing the handler does, and return its value.
   */
  transaction<X extends R>(work: (manager: EntityManager) => Promise<X>): Promise<X>;
  /**
   * Ends this attempt without counting it and without an error: the job goes back to pending and
   * runs again in `delayMs` (integer >= 0). Return its value: `return job.snooze(30_000)`. The last
   * error is kept as it was; like every outcome it is written only while this worker holds the
   * job's lease. A bad delay throws `InvalidJobOptionError`, which fails the attempt.
   */
  snooze(delayMs: number): JobSnooze;
  /**
   * Records how far the job got: a number from 0 to 100, or a small JSON object (at most 1 KB as
   * JSON); anything else throws `InvalidJobOptionError` at once. Stored on the job (`getJob(id).progress`)
   * and told as a `progress` event. Writes are coalesced: at most one is in flight per attempt and
   * only the latest value waits behind it, so calling it in a tight loop costs a few writes.
   * Fenced like every write of an attempt: only while this attempt holds the job's lease.
   * Resolves true once this value (or a later one) is stored; false when it was not (the lease was
   * lost, or the database refused it: logged). Never rejects, so it need not be awaited.
   */
  progress(value: JobProgress): Promise<boolean>;
  /**
   * Appends a line to the job's log (`QueueService.getJobLogs(id)`), stamped with the time of this
   * call. Text over 2 KB of UTF-8 is cut and marked `truncated`; the last 100 entries per job are
   * kept; the log is deleted with the job by retention. Lines are written in batches, a whole batch
   * per statement, so logging many lines does not cost a round trip each. Resolves once written
   * (or given up: logged); never rejects. A non-string throws `InvalidJobOptionError` at once.
   */
  log(text: string): Promise<void>;
  /**
   * The jobs this one waited for: its children (`addFlow`) or its dependencies (`dependsOn`), in id
   * order, as they are now. With `onChildFailure: 'continue'` this is where the failures are seen.
   * Empty for a job that waited for nothing. One query per call.
   */
  getChildren(): Promise<JobChild[]>;
}

/** A child or dependency of a job, as `ActiveJob.getChildren()` returns it. */
export interface JobChild<R = unknown> {
  id: string;
  queue: string;
  name: string;
  state: JobState;
  /** What its handler returned, once `completed`. */
  result: R | null;
  lastError: JobError | null;
}

/** Counts of jobs per state. */
export interface JobCounts {
  pending: number;
  active: number;
  completed: number;
  failed: number;
  cancelled: number;
  blocked: number;
}
