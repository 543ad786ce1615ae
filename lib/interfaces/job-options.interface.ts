import type { EntityManager } from 'typeorm';

/** How long to wait before the next attempt after a failure. */
export interface BackoffOptions {
  /** `fixed`: always `delayMs`; `exponential`: `delayMs * 2^(attempt - 1)`. */
  type: 'fixed' | 'exponential';
  /** Base delay in ms (integer >= 0). */
  delayMs: number;
  /** Upper bound of the delay in ms (integer >= `delayMs`). Default: none. */
  maxDelayMs?: number;
  /**
   * Fraction of the delay (0..1) taken off at random, so retries of many jobs that failed together
   * spread out. Default 0.2: the delay lies between 80 % and 100 % of the computed value.
   */
  jitter?: number;
}

/** The options that shape how a job runs; settable per module, per processor and per job. */
export interface JobRunOptions {
  /** Attempts allowed before the job ends `failed` (integer >= 1). Default 3. */
  maxAttempts?: number;
  /** Delay between attempts. Default exponential from 1 s, capped at 1 h, jitter 0.2. */
  backoff?: BackoffOptions;
  /** Time limit of one attempt in ms (integer >= 1). Default: none. */
  timeoutMs?: number;
}

/** Defaults for all jobs, set in `QueueModule.forRoot({ defaultJobOptions })`. */
export interface DefaultJobOptions extends JobRunOptions {
  /** Default priority (integer; higher runs first). Default 0. */
  priority?: number;
}

/**
 * A unique key: while a job of the same queue holds it, adding another job with it returns the
 * holder (`duplicate: true`) instead of adding one. Enforced by a unique index, so it holds under any
 * concurrency, across processes.
 */
export interface UniqueOptions {
  /** The key, scoped to the queue (a non-empty string of at most 512 characters). */
  key: string;
  /**
   * How long the key is held: `'finish'` (default) until the holder is completed, failed or
   * cancelled; `'start'` until it first starts (a job added during the run runs after it: updates
   * made meanwhile are not lost). Exclusive with `windowMs`.
   */
  until?: 'finish' | 'start';
  /**
   * Throttle: the key is held for a window of this many ms (integer >= 1) whatever becomes of the
   * holder. Windows are fixed and aligned to the epoch: window n covers [n·windowMs, (n+1)·windowMs),
   * on the database's clock.
   */
  windowMs?: number;
  /**
   * Debounce: when the holder has not started yet, it takes this add's data, priority and run time
   * (and is returned, `duplicate: true`); when it has, see `until`.
   */
  replace?: boolean;
}

/** Options of one `QueueService.add()`. */
export interface JobOptions extends DefaultJobOptions {
  /** At most one job of the queue with this key at a time (see {@link UniqueOptions}). */
  unique?: UniqueOptions;
  /** Do not run before this time. Exclusive with `delayMs`. */
  runAt?: Date;
  /** Do not run before this many ms from now (integer >= 0). Exclusive with `runAt`. */
  delayMs?: number;
  /**
   * Enqueue inside this TypeORM transaction: the job exists only if the transaction commits, and
   * workers are woken at commit.
   */
  manager?: EntityManager;
  /**
   * The job's group (any non-empty string of at most 255 characters, e.g. a tenant:
   * `customer:42`), for the queue's `groupConcurrency` and `groupRateLimit`, which hold per group
   * across every process. Without it the job belongs to no group and only the queue's own limits apply.
   */
  group?: string;
  /**
   * Run only after these jobs (ids of existing jobs, at most 1,000, no repeats) completed: the job is
   * `blocked` until then. An id that does not exist is refused (`JobDependencyError`) and nothing is
   * stored. Not with `unique`, not in `addBulk()`. See docs/flows.md.
   */
  dependsOn?: string[];
  /**
   * With `dependsOn`: what a dependency that failed for good or was cancelled does to this job.
   * `'fail'` (default): this job fails at once, its error naming the dependency. `'continue'`: it
   * counts as settled; the job runs once all are settled and sees the failures in `getChildren()`.
   */
  onChildFailure?: 'fail' | 'continue';
}

/** One entry of `QueueService.addBulk()`. */
export interface BulkJob<T = unknown> {
  queue: string;
  name: string;
  data: T;
  options?: Omit<JobOptions, 'manager'>;
}

/**
 * A job of `QueueService.addFlow()`: it runs only after all its `children` completed (each itself a
 * flow, to any depth). The whole tree is inserted atomically.
 */
export interface FlowJob<T = unknown> {
  queue: string;
  name: string;
  data: T;
  /** The options of `add()`, except `manager`, `unique`, `dependsOn` and `onChildFailure`. */
  options?: Omit<JobOptions, 'manager' | 'unique' | 'dependsOn' | 'onChildFailure'>;
  children?: FlowJob[];
  /**
   * What a child that failed for good (attempts spent) or was cancelled does to this job: `'fail'`
   * (default) fails it at once with an error naming the child; `'continue'` runs it anyway once
   * every child is finished, and it sees the failures in `job.getChildren()`.
   */
  onChildFailure?: 'fail' | 'continue';
}
