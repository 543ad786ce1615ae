import type { JobCounts } from './job.interface';
import type { EffectiveQueueLimits, QueueLimits } from './processor-options.interface';

/** A queue as the registry knows it (`QueueService.getQueues()`). */
export interface QueueInfo {
  name: string;
  /** Paused with `QueueService.pause()`: no worker of any process starts a job of it. */
  paused: boolean;
  pausedAt: Date | null;
  /**
   * Jobs per state, as last counted (see `countsAt`): recounted at most every 2 seconds, by one
   * caller at a time, so reading the list never costs a scan of the job table per call.
   */
  counts: JobCounts;
  /** When `counts` were taken; null for a queue registered since the last count. */
  countsAt: Date | null;
  createdAt: Date;
  updatedAt: Date;
  /**
   * The limits that apply to the queue now, each with where it comes from: a runtime override
   * (`updateQueue()`) if one is set, else the processors' declaration in code, else none.
   */
  limits: EffectiveQueueLimits;
  /** The limits declared in code, by the newest declaration of the running workers (see docs/limits-and-groups.md). */
  declared: QueueLimits;
  /** The runtime overrides set with `QueueService.updateQueue()`. */
  overrides: QueueLimits;
}
