import { QueueError } from './queue.error';

/** No job has this id. */
export class JobNotFoundError extends QueueError {
  constructor(readonly jobId: string) {
    super(`Job ${jobId} does not exist`);
  }
}
