import { QueueUnavailableError } from '../errors/queue-unavailable.error';

// NOTE: SQLSTATE classes 08 (connection exception) and 57P (operator intervention: shutdown,
// terminated backend, cannot connect now) mean the database is out of reach, not that the query
// was wrong; node-level socket errors mean the same.
const UNAVAILABLE_CODES = /^(08|57P0[1-3]|53300)/;
const UNAVAILABLE_SYSCALLS = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN']);
const UNAVAILABLE_MESSAGES = /Connection terminated|connection error|timeout exceeded when trying to connect|Client has encountered a connection error|Cannot use a pool after calling end|Driver not Connected|Client was closed/i;

/** True when `error` says the database is unreachable rather than that a statement failed. */
export function isConnectionError(error: unknown): boolean {
  // NOTE: duck-typed, not `instanceof Error`: socket errors are created by Node's own realm, which
  // differs from the caller's under vm-based runners (jest), where `instanceof Error` is false.
  if (typeof error !== 'object' || error === null) return false;
  // NOTE: the repository hands out connection failures already translated; the completer must
  // still see them as such (to keep and retry outcomes rather than drop them).
  if (error instanceof QueueUnavailableError) return true;
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'string' && (UNAVAILABLE_CODES.test(code) || UNAVAILABLE_SYSCALLS.has(code))) return true;
  const { errors, message } = error as { errors?: unknown; message?: unknown };
  if (Array.isArray(errors) && errors.some(isConnectionError)) return true;
  return typeof message === 'string' && UNAVAILABLE_MESSAGES.test(message);
}

/** Turns a connection failure into a {@link QueueUnavailableError}; other errors pass unchanged. */
export function translateDatabaseError(operation: string, error: unknown): unknown {
  return isConnectionError(error) ? new QueueUnavailableError(operation, error) : error;
}
