import type { JobRunOptions } from './job-options.interface';

/** Options of `@Processor(queue, options)`. */
export interface ProcessorOptions {
  /** Jobs of this queue run at the same time in this process (integer >= 1). Default 1. */
  concurrency?: number;
  /**
   * Defaults for this queue's jobs, over the module's `defaultJobOptions` and under each job's own
   * options. They are applied when a job is first claimed, so they hold wherever it was enqueued.
   */
  defaultJobOptions?: JobRunOptions;
}
