import type { JobRunOptions } from './job-options.interface';

/**
 * Options of `@Processor(queue, options)`. The limits of {@link QueueLimits} (`globalConcurrency`,
 * `rateLimit`, `groupConcurrency`, `groupRateLimit`) hold across every process: each worker declares
 * them in the queue registry at boot, and a runtime override (`QueueService.updateQueue()`) wins
 * over them until it is removed.
 */
export interface ProcessorOptions extends QueueLimits {
  /**
   * Jobs of this queue run at the same time in this process (integer >= 1). Default 1. A
   * `globalConcurrency` below it is allowed (the global limit wins; said once at boot).
   */
  concurrency?: number;
  /**
   * Defaults for this queue's jobs, over the module's `defaultJobOptions` and under each job's own
   * options. They are applied when a job is first claimed, so they hold wherever it was enqueued.
   */
  defaultJobOptions?: JobRunOptions;
}

/** A rate limit: at most `max` job starts in any window of `perMs` milliseconds. */
export interface RateLimit {
  /** Job starts allowed per window (integer >= 1). */
  max: number;
  /** The window's length in ms (integer >= 1). */
  perMs: number;
}

/**
 * The limits of a queue that hold across every process on the database, enforced by the claim
 * itself. Declared in code with `@Processor(queue, { ... })`, overridden at runtime with
 * `QueueService.updateQueue()`; see docs/limits-and-groups.md ("Configuring limits") for which applies.
 */
export interface QueueLimits {
  /** Jobs of the queue active at once, across every process (integer >= 1). */
  globalConcurrency?: number;
  /** Job starts of the queue per window, across every process. */
  rateLimit?: RateLimit;
  /**
   * Jobs of one group (the `group` job option) active at once, across every process (integer >= 1);
   * 1 runs each group's jobs one at a time, in claim order.
   */
  groupConcurrency?: number;
  /** Job starts per window, per group, across every process. */
  groupRateLimit?: RateLimit;
}

/** The names of the limits, in a stable order. */
export type QueueLimitName = keyof QueueLimits;

/**
 * What `QueueService.updateQueue()` takes: a value sets that limit's runtime override (it wins over
 * the code's declaration); `null` removes the override (the declared value applies again); a key left
 * out is left as it is.
 */
export type QueueLimitsUpdate = { [K in QueueLimitName]?: QueueLimits[K] | null };

/**
 * Where a queue's effective limit comes from: `'runtime'` an override set with `updateQueue()`,
 * `'code'` the processors' declaration, `'none'` neither (no limit).
 */
export type LimitSource = 'runtime' | 'code' | 'none';

/** One effective limit of a queue and where it comes from. */
export interface EffectiveLimit<T> {
  /** The limit that applies; null for none. */
  value: T | null;
  source: LimitSource;
}

/** Every limit of a queue as it applies now (see {@link LimitSource}). */
export type EffectiveQueueLimits = { [K in QueueLimitName]-?: EffectiveLimit<NonNullable<QueueLimits[K]>> };
