import { QueueError } from './queue.error';

/**
 * The database did not answer a statement of the queue (or the pool did not hand out a
 * connection) within `queryTimeoutMs`. Thrown as the `cause` of a {@link QueueUnavailableError}:
 * the connection it ran on was destroyed, and whether the statement took effect is unknown.
 */
export class QueryTimeoutError extends QueueError {
  constructor(readonly timeoutMs: number) {
    super(`No answer from the database within ${timeoutMs} ms (queryTimeoutMs)`);
  }
}
