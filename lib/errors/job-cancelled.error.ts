import { QueueError } from './queue.error';

/** The reason of `job.signal` when the job was cancelled while it ran. */
export class JobCancelledError extends QueueError {
  constructor(readonly jobId: string) {
    super(`Job ${jobId} was cancelled`);
  }
}
