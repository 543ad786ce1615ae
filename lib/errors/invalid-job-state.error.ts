import { QueueError } from './queue.error';
import type { JobState } from '../interfaces/job.interface';

/** The operation does not apply to a job in its current state (e.g. `retry()` of a completed job). */
export class InvalidJobStateError extends QueueError {
  constructor(
    readonly jobId: string,
    readonly operation: string,
    readonly state: JobState,
    allowed: readonly JobState[],
  ) {
    super(`Cannot ${operation} job ${jobId}: it is ${state}; only ${allowed.join(' or ')} jobs can be`);
  }
}
