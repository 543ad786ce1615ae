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

/** Options of one `QueueService.add()`. */
export interface JobOptions extends DefaultJobOptions {
  /** Do not run before this time. Exclusive with `delayMs`. */
  runAt?: Date;
  /** Do not run before this many ms from now (integer >= 0). Exclusive with `runAt`. */
  delayMs?: number;
  /**
   * Enqueue inside this TypeORM transaction: the job exists only if the transaction commits, and
   * workers are woken at commit.
   */
  manager?: EntityManager;
}

/** One entry of `QueueService.addBulk()`. */
export interface BulkJob<T = unknown> {
  queue: string;
  name: string;
  data: T;
  options?: Omit<JobOptions, 'manager'>;
}
