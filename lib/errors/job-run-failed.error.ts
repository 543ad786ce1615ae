import { QueueError } from './queue.error';
import type { JobError } from '../interfaces/job.interface';

/**
 * `run()` (nestjs-pg-queue/testing): the job failed in another process (a running worker took it),
 * so the handler's own error object is not here; this carries what was stored.
 */
export class JobRunFailedError extends QueueError {
  constructor(
    readonly jobId: string,
    readonly lastError: JobError | null,
  ) {
    super(`Job ${jobId} failed: ${lastError ? `${lastError.name}: ${lastError.message}` : 'no error recorded'}`);
  }
}
