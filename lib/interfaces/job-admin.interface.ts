import type { Job, JobState } from './job.interface';

/**
 * The orders `QueueService.listJobs()` pages in. Each is served by an index, so the first page and
 * a deep one (reached by cursor) cost about the same:
 * - `newest` (default): last added first (by id, descending).
 * - `oldest`: first added first (by id).
 * - `nextToRun`: the order workers claim in (priority descending, then run time, then id); for the
 *   `pending` jobs of one `queue` (both filters required). Delayed jobs are listed among the due
 *   ones by priority, as the claim index holds them.
 * - `lastFinished`: most recently finished first (`finishedAt` descending, then id); finished jobs
 *   only (`completed`, `failed`, `cancelled`: a `state` filter, if any, must name only those).
 */
export type JobSort = 'newest' | 'oldest' | 'nextToRun' | 'lastFinished';

/**
 * Which jobs a listing or a bulk action applies to. Every criterion given must match (AND); none
 * given matches every job.
 */
export interface JobFilter {
  /** Jobs of this queue. */
  queue?: string;
  /** Jobs in this state, or in any of these states. */
  state?: JobState | JobState[];
  /** Jobs of this name (the `@Handle(name)`). */
  name?: string;
  /**
   * A job id (digits only: matches that job), or else text to find in the last error's name or
   * message (case-insensitive, `%` and `_` taken literally). Text search examines at most
   * `scanLimit` jobs per page (see {@link ListJobsOptions.scanLimit}).
   */
  search?: string;
  /**
   * A deep partial of the data: jobs whose data contains it (PostgreSQL `@>`): `{ user: { id: 7 } }`
   * matches `{ user: { id: 7, name: 'x' }, more: 1 }`; arrays match when they contain the given
   * elements. Examines at most `scanLimit` jobs per page, like a text search.
   */
  data?: Record<string, unknown>;
}

/** Options of `QueueService.listJobs()`: a filter, an order and a page. */
export interface ListJobsOptions extends JobFilter {
  /** The order (default `newest`). */
  sort?: JobSort;
  /** Jobs per page, 1 to 1,000 (default 50). */
  limit?: number;
  /** The `next` cursor of the previous page, for the page after it (same filter and sort). */
  after?: string;
  /**
   * With a text `search` or a `data` filter, the most jobs one page examines (1 to 10,000,000,
   * default 20,000), so a filter that matches little cannot scan a huge table in one call: a page
   * that reached this many stops there with `scanLimited: true` and a `next` cursor that continues
   * after the last job examined.
   */
  scanLimit?: number;
}

/** One page of `listJobs()`. */
export interface JobPage<T = unknown, R = unknown> {
  jobs: Job<T, R>[];
  /** The cursor of the next page (pass it as `after`), or null when this was the last one. */
  next: string | null;
  /**
   * True when the page stopped because it examined `scanLimit` jobs (a text search or data filter):
   * it may hold fewer than `limit` jobs, even none, and `next` continues the search.
   */
  scanLimited: boolean;
}

/** The jobs a bulk action applies to: these ids, or every job that matches a filter. */
export type JobSelection = { ids: string[] } | JobFilter | { all: true };

/** How a bulk action runs. */
export interface BulkActionOptions {
  /** Jobs per transaction, 1 to 10,000 (default 1,000). */
  batchSize?: number;
  /**
   * How much the action yields to the queue's own work: after each batch it waits `pace` times as
   * long as the batch took, so it takes at most 1 / (1 + pace) of the time of one database
   * connection (0 to 100, default 2: a third). 0 runs the batches back to back, fastest, at the
   * expense of the workers' throughput on a busy database.
   */
  pace?: number;
  /** Stops the action between two batches (what the done batches did stays done). */
  signal?: AbortSignal;
  /** Called after each batch with the totals so far. An exception it throws is ignored. */
  onProgress?: (progress: BulkActionProgress) => void;
}

/** The totals of a bulk action so far. */
export interface BulkActionProgress {
  /** Jobs the action applied to. */
  affected: number;
  /** Jobs looked at (ids given, or jobs matching the filter's queue, name and states). */
  examined: number;
  /** Batches (transactions) done. */
  batches: number;
}

/** What `QueueService.updateJob()` may change in a pending job. */
export interface JobUpdate<T = unknown> {
  /** New data, validated as `add()` validates it. */
  data?: T;
  /** New priority (higher runs first). */
  priority?: number;
  /** New run time. */
  runAt?: Date;
}
