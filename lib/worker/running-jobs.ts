import type { Job } from '../interfaces/job.interface';
import type { AttemptAbort } from './attempt-abort';

/** One attempt this process is running: one claim of one job. */
export interface RunningJob {
  job: Job;
  abort: AttemptAbort;
  /**
   * Local estimate of when the lease lapses: the send time of the last renewal the database
   * confirmed (at first, of the claim) + the lease length. Conservative: the database set its
   * `locked_until` from its own `now()`, which came later.
   */
  leaseExpiresAt: number;
  /**
   * Settles when the handler's own promise settles; set only when the attempt was aborted before
   * that (the handler ignores, or has not yet acted on, its signal). The attempt keeps its
   * concurrency slot until then.
   */
  stillRunning?: Promise<void>;
  /** The handler has returned (or never ran): the attempt's concurrency slot is free. */
  handlerDone: boolean;
  /** Another attempt of the same job, older, still running here (see {@link RunningJobs}). */
  older?: RunningJob;
  /** Graceful shutdown gave up on this attempt: its handler outlived the abort's grace, so no
   * outcome is written for it whenever it returns; its lease lapses and it is rescued. */
  abandoned: boolean;
  /** Removed from the running set (its attempt is over). */
  removed: boolean;
  /** When its `active` lifecycle event was told (this process's clock, epoch ms), if one was. */
  activeAt?: number;
}

/**
 * The attempts this process runs right now. Keyed by job id and claim: the map holds the newest
 * attempt of each job, and that one links to any older attempt of the same job still running here
 * (a cancelled run whose job was retried and claimed again here, or a frozen worker's run that its
 * own rescuer requeued). Both are then renewed, and aborted, separately; a newer claim never hides
 * an older run. The executor adds and removes them; the lease keeper renews them and aborts those
 * whose lease is gone or about to lapse; shutdown aborts them.
 */
export class RunningJobs {
  private readonly jobs = new Map<string, RunningJob>();

  add(job: Job, abort: AttemptAbort, leaseExpiresAt: number): RunningJob {
    const older = this.jobs.get(job.id);
    const running: RunningJob = { job, abort, leaseExpiresAt, stillRunning: undefined, handlerDone: false, older, abandoned: false, removed: false, activeAt: undefined };
    this.jobs.set(job.id, running);
    return running;
  }

  delete(running: RunningJob): void {
    running.removed = true;
    const id = running.job.id;
    let newest = this.jobs.get(id);
    if (newest === running) {
      if (running.older) this.jobs.set(id, running.older);
      else this.jobs.delete(id);
      return;
    }
    for (; newest; newest = newest.older) {
      if (newest.older === running) {
        newest.older = running.older;
        return;
      }
    }
  }

  /** Whether an attempt of job `id` runs here. */
  has(id: string): boolean {
    return this.jobs.has(id);
  }

  /** Every attempt, older attempts of a job included. */
  all(): RunningJob[] {
    const all: RunningJob[] = [];
    for (const newest of this.jobs.values()) {
      for (let r: RunningJob | undefined = newest; r; r = r.older) all.push(r);
    }
    return all;
  }
}
