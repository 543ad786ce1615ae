import { Injectable } from '@nestjs/common';
import { JobLifecycle } from '../worker/job-lifecycle';
import { GlobalEventPublisher } from './global-event-publisher';
import { JobEventsStore } from './job-events.store';
import { JobWaiter } from './job-waiter';
import type { Job, JobLogEntry } from '../interfaces/job.interface';

/** What `QueueService` delegates to the events, progress and log features. */
@Injectable()
export class JobEventsService {
  constructor(
    private readonly lifecycle: JobLifecycle,
    private readonly publisher: GlobalEventPublisher,
    private readonly store: JobEventsStore,
    private readonly waiter: JobWaiter,
  ) {}

  waitForJob<T, R>(id: string, timeoutMs: number): Promise<Job<T, R>> {
    return this.waiter.wait<T, R>(id, timeoutMs);
  }

  async getJobLogs(id: string): Promise<JobLogEntry[]> {
    return (await this.store.get()).getLogs(id);
  }

  /** This process cancelled `job` (the write is committed): tell local and global listeners. */
  cancelled(job: Job): void {
    if (this.lifecycle.active) this.lifecycle.emit({ type: 'cancelled', job, at: Date.now() });
    void this.publisher.publishCancelled(job).catch(() => undefined);
  }
}
