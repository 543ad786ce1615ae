import { QueueError } from './queue.error';

/** `QueueService.waitForJob()` gave up: the job did not finish within `timeoutMs`. */
export class WaitForJobTimeoutError extends QueueError {
  constructor(
    readonly jobId: string,
    readonly timeoutMs: number,
    /** The job's state when last read (null if it could not be read). */
    readonly lastState: string | null,
  ) {
    super(`Job ${jobId} did not finish within ${timeoutMs} ms (last seen ${lastState ?? 'unread'})`);
  }
}
