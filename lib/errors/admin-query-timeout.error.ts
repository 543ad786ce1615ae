import { QueueError } from './queue.error';

/**
 * A query or bulk batch of the job management API ran longer than `adminQueryTimeoutMs` and the
 * database cancelled it (nothing of that statement took effect). Narrow the filter (a queue, a
 * state), lower `scanLimit` or `batchSize`, or raise the option.
 */
export class AdminQueryTimeoutError extends QueueError {
  constructor(
    readonly operation: string,
    readonly timeoutMs: number,
    options?: { cause?: unknown },
  ) {
    super(
      `${operation} took longer than ${timeoutMs} ms (adminQueryTimeoutMs) and was cancelled: narrow the filter (queue, state), lower scanLimit or batchSize, or raise adminQueryTimeoutMs`,
      options,
    );
  }
}
