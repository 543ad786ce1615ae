import { QueueError } from './queue.error';

/**
 * This worker no longer holds the job's lease (it lapsed and the job was rescued, or it was
 * cancelled or timed out): its outcome is dropped so it cannot overwrite a newer attempt's.
 */
export class JobLeaseLostError extends QueueError {
  constructor(
    readonly jobId: string,
    readonly attempt: number,
  ) {
    super(`Job ${jobId} attempt ${attempt}: this worker no longer holds its lease; its outcome was dropped`);
  }
}
