import { Logger } from '@nestjs/common';
import type { JobRepository } from '../database/job.repository';
import type { RunningJobs } from './running-jobs';
import { JobLeaseLostError } from '../errors/job-lease-lost.error';
import { JobCancelledError } from '../errors/job-cancelled.error';

/**
 * Renews the leases of every job this process runs, with one statement per tick for all of them.
 * A job whose lease this worker no longer holds (rescued, cancelled, timed out elsewhere) is
 * aborted, with a JobCancelledError if it was cancelled. When renewals fail (database
 * unreachable), a job is aborted once its lease has surely lapsed, since another worker may then
 * rescue and rerun it.
 */
export class LeaseKeeper {
  private readonly logger = new Logger('QueueWorker');
  private timer?: NodeJS.Timeout;
  private ticking?: Promise<void>;
  private failing = false;

  constructor(
    private readonly repository: JobRepository,
    private readonly running: RunningJobs,
    private readonly workerId: string,
    private readonly lockDurationMs: number,
    private readonly intervalMs: number,
  ) {}

  start(): void {
    this.timer = setInterval(() => {
      this.ticking ??= this.tick().finally(() => (this.ticking = undefined));
    }, this.intervalMs);
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.ticking;
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
        if (held.has(r.job.id)) r.leaseExpiresAt = sentAt + this.lockDurationMs;
        else if (this.running.get(r.job.id) === r) {
          // NOTE: without LISTEN (or when the NOTIFY was missed) this is how a cancellation reaches
          // the handler: its signal must say cancelled, not lease lost.
          r.abort.abort(cancelled.has(r.job.id) ? new JobCancelledError(r.job.id) : new JobLeaseLostError(r.job.id, r.job.attempts));
        }
      }
    } catch (error) {
      if (!this.failing) this.logger.warn(`Lease renewal failed (${(error as Error)?.message ?? error})`);
      this.failing = true;
      const now = Date.now();
      for (const r of jobs) {
        if (r.leaseExpiresAt <= now) r.abort.abort(new JobLeaseLostError(r.job.id, r.job.attempts));
      }
    }
  }
}
