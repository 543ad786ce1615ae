import type { JobNotification } from '../database/job-notification.listener';
import type { JobLifecycle } from './job-lifecycle';

/**
 * Tells the lifecycle hub the flow changes this worker's writes caused. The flow trigger releases
 * (or blocks again) a job inside the statement that settled its dependency, so the worker that
 * wrote that outcome learns of it from the trigger's notice, which names the worker and arrives
 * once the change is committed. Notices of other workers' writes are theirs to tell.
 * NOTE: needs the LISTEN connection (`worker.listen`, on by default); a notice sent while it is
 * reconnecting is missed (the job is released all the same: only the event is lost).
 */
export class FlowEventRelay {
  constructor(
    private readonly workerId: string,
    private readonly lifecycle: JobLifecycle,
  ) {}

  tell(notice: Extract<JobNotification, { type: 'flow' }>): void {
    if (notice.by !== this.workerId || !this.lifecycle.active) return;
    this.lifecycle.emit({ type: notice.event, job: { id: notice.id, queue: notice.queue, name: notice.name }, at: Date.now() });
  }
}
