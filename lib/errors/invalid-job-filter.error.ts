import { QueueError } from './queue.error';

/**
 * A filter, sort, page cursor or bulk selection of the job management API (`listJobs()`,
 * `retryJobs()`, …) is malformed. Thrown before anything reaches the database.
 */
export class InvalidJobFilterError extends QueueError {
  constructor(
    /** The field at fault, e.g. `state`, `data` or `after` (the cursor). */
    readonly field: string,
    readonly value: unknown,
    expected: string,
  ) {
    super(`Invalid ${field}: ${describe(value)}; expected ${expected}`);
  }
}

function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value.length > 60 ? `${value.slice(0, 60)}…` : value);
  try {
    const json = JSON.stringify(value);
    if (json !== undefined) return json.length > 60 ? `${json.slice(0, 60)}…` : json;
  } catch {
    // not JSON: fall through
  }
  return typeof value;
}
