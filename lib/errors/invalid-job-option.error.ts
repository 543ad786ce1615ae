import { QueueError } from './queue.error';

/** A job option (or a queue/job name, or a job id) has a value that is not allowed. */
export class InvalidJobOptionError extends QueueError {
  constructor(
    /** The option at fault, e.g. `priority` or `backoff.delayMs`. */
    readonly option: string,
    readonly value: unknown,
    expected: string,
  ) {
    super(`Invalid ${option}: ${describe(value)}; expected ${expected}`);
  }
}

function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value.length > 60 ? `${value.slice(0, 60)}…` : value);
  if (typeof value === 'bigint') return `${value}n`;
  if (value instanceof Date) return `Date(${value.getTime()})`;
  try {
    return String(value);
  } catch {
    return typeof value;
  }
}
