import type { JobRepository } from '../../database/job.repository';
import { PeriodicTask } from './periodic-task';

const DELETE_BATCH = 5000;
export const RETENTION_INTERVAL_MS = 60_000;

/** Deletes finished jobs older than `retentionMs`, in batches so no statement holds locks for long. */
export class RetentionCleaner extends PeriodicTask {
  constructor(repository: JobRepository, retentionMs: number, intervalMs = RETENTION_INTERVAL_MS) {
    super('Retention cleaner', intervalMs, async () => {
      while ((await repository.deleteFinished(retentionMs, DELETE_BATCH)) === DELETE_BATCH) {
        // keep going until a partial batch says we are done
      }
    });
  }
}
