import type { Job } from '../interfaces/job.interface';

/** Index of the trace context in a row of `claimTraced` (after the 14 columns of `claimedColumns`). */
export const CLAIMED_TRACE_COLUMN = 14;

/**
 * The trace context of each claimed job that has one (tracing on), from the claim to the consumer
 * span, without a field on the public `Job`: weakly held, so it goes with the job object.
 */
export const claimedTraceContexts = new WeakMap<Job, Record<string, string>>();
