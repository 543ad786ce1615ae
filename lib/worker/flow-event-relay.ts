import { Logger } from '@nestjs/common';
import type { JobNotification } from '../database/job-notification.listener';
import type { JobRepository } from '../database/job.repository';
import type { JobLifecycle } from './job-lifecycle';

type FlowNotice = Extract<JobNotification, { type: 'flow' }>;

/**
 * Tells the lifecycle hub the flow changes this worker's writes caused. The flow trigger releases
 * a job (`unblocked`), blocks it again or fails it (a dependency failed for good) inside the
 * statement that ended its dependency, so the worker that wrote that outcome learns of it from the
 * trigger's notice, which names the worker and arrives once the change is committed. Notices of
 * other workers' writes are theirs to tell.
 * NOTE: needs the LISTEN connection (`worker.listen`, on by default); a notice sent while it is
 * reconnecting is missed (the job is released all the same: only the event is lost).
 */
export class FlowEventRelay {
  private readonly logger = new Logger('QueueLifecycle');

  constructor(
    private readonly workerId: string,
    private readonly lifecycle: JobLifecycle,
    private readonly repository: JobRepository,
  ) {}

  tell(notice: FlowNotice): void {
    if (notice.by !== this.workerId || !this.lifecycle.active) return;
    if (notice.event === 'failed') {
      void this.tellFailed(notice);
      return;
    }
    this.lifecycle.emit({ type: notice.event, job: { id: notice.id, queue: notice.queue, name: notice.name }, at: Date.now() });
  }

  private tellFailed(notice: FlowNotice): Promise<void> {
    return tellDependencyFailure(this.repository, this.lifecycle, this.logger, notice.id);
  }
}

/**
 * Tells the hub that job `id` failed because a dependency failed: a `failed` event carries the
 * whole job and its error, so the job is read back (one query, flows only). Never throws.
 */
export async function tellDependencyFailure(repository: JobRepository, lifecycle: JobLifecycle, logger: Logger, id: string): Promise<void> {
  try {
    const job = await repository.findById(id);
    if (job) lifecycle.emit({ type: 'failed', job, at: Date.now(), error: JSON.stringify(job.lastError) });
  } catch (error) {
    logger.warn(`Could not read job ${id} to tell its failure (a dependency failed): ${(error as Error)?.message ?? error}`);
  }
}
