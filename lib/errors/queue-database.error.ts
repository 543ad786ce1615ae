import { QueueError } from './queue.error';

/**
 * The database refused a statement of the queue (not a connection failure: that is
 * {@link QueueUnavailableError}). `sqlState` is PostgreSQL's error code when it sent one (e.g.
 * `42P01`: the job table does not exist), and `cause` the driver's error.
 */
export class QueueDatabaseError extends QueueError {
  constructor(
    /** What the queue was doing: `insert`, `claim`, `finish`, `getJob`, … */
    readonly operation: string,
    /** The SQLSTATE of the server's error, or null when the error did not come from the server. */
    readonly sqlState: string | null,
    cause: unknown,
  ) {
    const message = (cause as { message?: unknown })?.message ?? String(cause);
    super(`Queue database error during ${operation}${sqlState ? ` (SQLSTATE ${sqlState})` : ''}: ${message}`, { cause });
  }
}
