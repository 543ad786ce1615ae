import { QueueError } from './queue.error';

/**
 * A statement of the queue did not get a connection from its pool, or an answer from the database,
 * within `queryTimeoutMs`. Thrown as the `cause` of a {@link QueueUnavailableError}. When it was
 * waiting for the answer, the connection was destroyed, and whether the statement took effect is
 * unknown.
 */
export class QueryTimeoutError extends QueueError {
  constructor(
    readonly timeoutMs: number,
    /** What it was still waiting for: a pooled connection (pool exhausted, or connecting) or the answer. */
    readonly waitingFor: 'connection' | 'answer',
  ) {
    super(
      waitingFor === 'connection'
        ? `No database connection from the pool within ${timeoutMs} ms (queryTimeoutMs): every connection is busy, or connecting does not finish`
        : `No answer from the database within ${timeoutMs} ms (queryTimeoutMs)`,
    );
  }
}
