import type { Job } from '../interfaces/job.interface';
import type { AttemptAbort } from './attempt-abort';

/** One attempt this process is running. */
export interface RunningJob {
  job: Job;
  abort: AttemptAbort;
  /** Local estimate of when the lease lapses: renewal send time + lease length (conservative). */
  leaseExpiresAt: number;
}

/**
 * The attempts this process runs right now, by job id. The executor adds and removes them; the
 * lease keeper renews them; cancellation notifications and shutdown abort them.
 */
export class RunningJobs {
  private readonly jobs = new Map<string, RunningJob>();

  add(job: Job, abort: AttemptAbort, lockDurationMs: number): RunningJob {
    const running = { job, abort, leaseExpiresAt: Date.now() + lockDurationMs };
    this.jobs.set(job.id, running);
    return running;
  }

  delete(running: RunningJob): void {
    if (this.jobs.get(running.job.id) === running) this.jobs.delete(running.job.id);
  }

  get(id: string): RunningJob | undefined {
    return this.jobs.get(id);
  }

  /** Aborts one attempt (if it runs here and is not aborted yet). */
  abort(id: string, reason: Error): boolean {
    const running = this.jobs.get(id);
    if (!running || running.abort.aborted) return false;
    running.abort.abort(reason);
    return true;
  }

  all(): RunningJob[] {
    return [...this.jobs.values()];
  }
}
