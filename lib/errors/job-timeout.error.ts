import { QueueError } from './queue.error';

/** An attempt ran longer than its `timeoutMs`. It is retried or failed like any other error. */
export class JobTimeoutError extends QueueError {
  constructor(readonly timeoutMs: number) {
    super(`Job timed out after ${timeoutMs} ms`);
  }
}
