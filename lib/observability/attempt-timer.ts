import type { Job } from '../interfaces/job.interface';

/**
 * The two timings of an attempt, from lifecycle events: wait time is due to started
 * (`startedAt - runAt`, both the database's clock, so no skew between hosts), run time is started
 * to outcome written (this process's clock, from its `active` event; the database's `startedAt`
 * for an attempt whose start this timer did not see).
 */
export class AttemptTimer {
  private readonly starts = new WeakMap<Job, number>();

  /** On `active`: remembers when the attempt started here; returns its wait time (ms). */
  started(job: Job, at: number): number {
    this.starts.set(job, at);
    return job.startedAt ? Math.max(0, job.startedAt.getTime() - job.runAt.getTime()) : 0;
  }

  /** On an outcome of the attempt (completed, failed, retrying): its run time (ms). */
  ended(job: Job, at: number): number {
    return Math.max(0, at - (this.starts.get(job) ?? job.startedAt?.getTime() ?? at));
  }
}
