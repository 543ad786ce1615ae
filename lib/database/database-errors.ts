import { QueueUnavailableError } from '../errors/queue-unavailable.error';

// NOTE: SQLSTATE classes 08 (connection exception) and 57P (operator intervention: shutdown,
// terminated backend, cannot connect now) mean the database is out of reach, not that the query
// was wrong; node-level socket errors mean the same.
const UNAVAILABLE_CODES = /^(08|57P0[1-3]|53300)/;
const UNAVAILABLE_SYSCALLS = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN']);
const UNAVAILABLE_MESSAGES = /Connection terminated|connection error|timeout exceeded when trying to connect|Client has encountered a connection error|Cannot use a pool after calling end|Driver not Connected|Client was closed/i;

/** True when `error` says the database is unreachable rather than that a statement failed. */
export function isConnectionError(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'string' && (UNAVAILABLE_CODES.test(code) || UNAVAILABLE_SYSCALLS.has(code))) return true;
  if (error instanceof AggregateError && error.errors.some(isConnectionError)) return true;
  return UNAVAILABLE_MESSAGES.test(error.message);
}

/** Turns a connection failure into a {@link QueueUnavailableError}; other errors pass unchanged. */
export function translateDatabaseError(operation: string, error: unknown): unknown {
  return isConnectionError(error) ? new QueueUnavailableError(operation, error) : error;
}
