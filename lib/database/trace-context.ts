import type { Job } from '../interfaces/job.interface';

/**
 * The trace context of each claimed job that has one (tracing on), from the claim to the consumer
 * span, without a field on the public `Job`: weakly held, so it goes with the job object.
 */
export const claimedTraceContexts = new WeakMap<Job, Record<string, string>>();
