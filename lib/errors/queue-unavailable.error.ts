import { QueueError } from './queue.error';

/** The database could not be reached (down, restarting, connection terminated). The `cause` says how. */
export class QueueUnavailableError extends QueueError {
  constructor(operation: string, cause: unknown) {
    super(`Queue database unavailable during ${operation}: ${(cause as { message?: unknown })?.message ?? String(cause)}`, { cause });
  }
}
