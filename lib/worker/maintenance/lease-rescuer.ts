import { Logger } from '@nestjs/common';
import type { JobRepository } from '../../database/job.repository';
import { PeriodicTask } from './periodic-task';
import type { JobLifecycle } from '../job-lifecycle';

const RESCUE_BATCH = 1000;

/**
 * Puts back jobs whose lease lapsed (their worker died, froze or lost the database), in every
 * queue, not only those this process runs: a queue whose processor was removed or renamed must not
 * keep jobs active forever. To pending with the attempt counted, or to failed once attempts are
 * spent (never for lack of a handler). Every worker runs one; SKIP LOCKED keeps them from stepping
 * on each other.
 */
export class LeaseRescuer extends PeriodicTask {
  private readonly log = new Logger('QueueRescuer');

  constructor(repository: JobRepository, intervalMs: number, lifecycle?: JobLifecycle) {
    super('Lease rescuer', intervalMs, async () => {
      let rescued: Awaited<ReturnType<JobRepository['rescueExpired']>>;
      do {
        rescued = await repository.rescueExpired(RESCUE_BATCH);
        if (lifecycle?.active) {
          const at = Date.now();
          for (const job of rescued) lifecycle.emit({ type: 'rescued', job, at });
        }
        if (rescued.length > 0) {
          const failed = rescued.filter((r) => r.state === 'failed').length;
          this.log.warn(`Rescued ${rescued.length} job(s) whose lease lapsed (${failed} failed: attempts exhausted)`);
        }
      } while (rescued.length === RESCUE_BATCH);
    });
  }
}
