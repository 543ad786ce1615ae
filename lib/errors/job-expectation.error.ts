import { QueueError } from './queue.error';

/** `expectEnqueued()` (nestjs-pg-queue/testing) found no job matching the filter; the message lists the jobs there are. */
export class JobExpectationError extends QueueError {
  constructor(
    message: string,
    /** The filter that matched nothing. */
    readonly filter: unknown,
  ) {
    super(message);
  }
}
