import { Logger } from '@nestjs/common';
import type { JobRepository, RescuedJob } from '../../database/job.repository';
import { JobLifecycle } from '../job-lifecycle';
import { PeriodicTask } from './periodic-task';

const RESCUE_BATCH = 1000;

/**
 * Puts back jobs whose lease lapsed (their worker died, froze or lost the database), in every
 * queue, not only those this process runs: a queue whose processor was removed or renamed must not
 * keep jobs active forever. To pending with the attempt counted, or to failed once attempts are
 * spent (never for lack of a handler). Every worker runs one; SKIP LOCKED keeps them from stepping
 * on each other. Each rescued job is told to the lifecycle hub (`rescued`) once written.
 */
export class LeaseRescuer extends PeriodicTask {
  private readonly log = new Logger('QueueRescuer');

  constructor(repository: JobRepository, intervalMs: number, lifecycle: JobLifecycle = new JobLifecycle()) {
    super('Lease rescuer', intervalMs, async () => {
      let rescued: RescuedJob[];
      do {
        rescued = await repository.rescueExpired(RESCUE_BATCH);
        if (rescued.length > 0) {
          const failed = rescued.filter((r) => r.state === 'failed').length;
          this.log.warn(`Rescued ${rescued.length} job(s) whose lease lapsed (${failed} failed: attempts exhausted)`);
          if (lifecycle.active) {
            const at = Date.now();
            for (const job of rescued) lifecycle.emit({ type: 'rescued', job, at });
          }
        }
      } while (rescued.length === RESCUE_BATCH);
    });
  }
}
