import { Logger } from '@nestjs/common';
import type { JobEventsRepository } from '../database/job-events.repository';
import type { Job, JobProgress } from '../interfaces/job.interface';
import type { JobLifecycle } from './job-lifecycle';

/**
 * The progress of one attempt, written coalesced: at most one write in flight, and behind it only
 * the latest value (a thousand calls in a tight loop cost two writes). Each write is fenced on the
 * attempt's claim, so a lost lease stops it. Told to the lifecycle hub (`progress`) once written.
 */
export class JobProgressWriter {
  private readonly logger = new Logger('QueueWorker');
  private next?: { json: string; done: ((written: boolean) => void)[] };
  private writing = false;

  constructor(
    private readonly job: Job,
    private readonly repository: () => Promise<JobEventsRepository>,
    private readonly workerId: string,
    private readonly lifecycle: JobLifecycle,
  ) {}

  /** Queues a value (validated, as JSON); resolves once it or a later value is written. */
  update(json: string): Promise<boolean> {
    return new Promise((resolve) => {
      if (this.next) {
        this.next.json = json;
        this.next.done.push(resolve);
      } else {
        this.next = { json, done: [resolve] };
      }
      if (!this.writing) void this.writeAll();
    });
  }

  private async writeAll(): Promise<void> {
    this.writing = true;
    try {
      while (this.next) {
        const { json, done } = this.next;
        this.next = undefined;
        let written = false;
        try {
          written = await (await this.repository()).writeProgress(this.job.id, this.job.claims, json, this.workerId);
        } catch (error) {
          this.logger.warn(`Could not store the progress of job ${this.job.id}: ${(error as Error)?.message ?? error}`);
        }
        if (written && this.lifecycle.active) this.lifecycle.emit({ type: 'progress', job: this.job, at: Date.now(), progress: JSON.parse(json) as JobProgress });
        for (const resolve of done) resolve(written);
      }
    } finally {
      this.writing = false;
    }
  }
}
