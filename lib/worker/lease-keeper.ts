import { Logger } from '@nestjs/common';
import type { JobRepository } from '../database/job.repository';
import type { RunningJob, RunningJobs } from './running-jobs';
import { JobLeaseLostError } from '../errors/job-lease-lost.error';
import { JobCancelledError } from '../errors/job-cancelled.error';

/**
 * The part of a lease that is never used: an attempt is aborted this long before its lease could
 * lapse (a fifth of the lease, at most 5 s), so its handler has time to stop before another worker
 * can rescue and rerun the job.
 */
export function leaseSafetyMarginMs(lockDurationMs: number): number {
  return Math.min(Math.floor(lockDurationMs / 5), 5000);
}

/**
 * Renews the leases of every job this process runs, with one statement per tick for all of them.
 * An attempt whose lease this worker no longer holds (rescued, cancelled, timed out elsewhere,
 * claimed again) is aborted, with a JobCancelledError if it was cancelled.
 *
 * Independently of the heartbeat statement, a deadline timer aborts every attempt whose lease may
 * lapse soon: the last confirmed renewal's send time + the lease, minus a safety margin. So an
 * attempt is aborted before another worker can rescue its job whether its renewals fail, hang (a
 * silent network, a starved pool) or are merely slow.
 */
export class LeaseKeeper {
  private readonly logger = new Logger('QueueWorker');
  private timer?: NodeJS.Timeout;
  private deadlineTimer?: NodeJS.Timeout;
  private ticking?: Promise<void>;
  /** A check was asked for while a tick was in flight: tick once more after it. */
  private again = false;
  private failing = false;
  private readonly marginMs: number;

  constructor(
    private readonly repository: JobRepository,
    private readonly running: RunningJobs,
    private readonly workerId: string,
    private readonly lockDurationMs: number,
    private readonly intervalMs: number,
  ) {
    this.marginMs = leaseSafetyMarginMs(lockDurationMs);
  }

  start(): void {
    this.timer = setInterval(() => void this.check(), this.intervalMs);
    // NOTE: often enough that an attempt is aborted well inside its margin, and never less often
    // than renewals happen.
    const every = Math.max(20, Math.min(this.intervalMs, Math.floor(this.marginMs / 2)));
    this.deadlineTimer = setInterval(() => this.abortLapsing(), every);
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    clearInterval(this.deadlineTimer);
    this.again = false;
    await this.ticking;
  }

  /**
   * Renews now (a cancel notice arrived: the row says whether it is real). Coalesced: one
   * statement in flight at most, and at most one more after it, however many calls.
   */
  check(): Promise<void> {
    if (this.ticking) {
      this.again = true;
      return this.ticking;
    }
    this.ticking = this.tickWhileAsked().finally(() => (this.ticking = undefined));
    return this.ticking;
  }

  private async tickWhileAsked(): Promise<void> {
    do {
      this.again = false;
      await this.tick();
    } while (this.again);
  }

  async tick(): Promise<void> {
    const jobs = this.running.all().filter((r) => !r.abort.aborted);
    if (jobs.length === 0) return;
    const sentAt = Date.now();
    try {
      const { held, cancelled } = await this.repository.heartbeat(
        jobs.map((r) => ({ id: r.job.id, claim: r.job.claims })),
        this.workerId,
        this.lockDurationMs,
      );
      if (this.failing) this.logger.log('Lease renewals resumed');
      this.failing = false;
      for (const r of jobs) {
        if (held.get(r.job.id) === r.job.claims) r.leaseExpiresAt = sentAt + this.lockDurationMs;
        else if (!r.removed) {
          // NOTE: without LISTEN (or when the NOTIFY was missed) this is how a cancellation reaches
          // the handler: its signal must say cancelled, not lease lost.
          r.abort.abort(cancelled.get(r.job.id) === r.job.claims ? new JobCancelledError(r.job.id) : new JobLeaseLostError(r.job.id, r.job.attempts));
        }
      }
    } catch (error) {
      if (!this.failing) this.logger.warn(`Lease renewal failed (${(error as Error)?.message ?? error})`);
      this.failing = true;
      this.abortLapsing();
    }
  }

  /** Aborts the attempts whose lease may lapse within the safety margin. */
  private abortLapsing(): void {
    const limit = Date.now() + this.marginMs;
    let lapsing: RunningJob[] | undefined;
    for (const r of this.running.all()) {
      if (r.abort.aborted || r.leaseExpiresAt > limit) continue;
      (lapsing ??= []).push(r);
      r.abort.abort(new JobLeaseLostError(r.job.id, r.job.attempts));
    }
    if (lapsing) {
      const ids = lapsing.map((r) => r.job.id);
      this.logger.warn(
        `Aborted ${ids.length} job(s) whose lease could not be renewed in time and may lapse within ${this.marginMs} ms ` +
          `(${ids.slice(0, 10).join(', ')}${ids.length > 10 ? ', …' : ''}): another worker may rescue them`,
      );
    }
  }
}
