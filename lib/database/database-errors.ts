import { QueueError } from '../errors/queue.error';
import { QueueUnavailableError } from '../errors/queue-unavailable.error';
import { QueueDatabaseError } from '../errors/queue-database.error';
import { QueryTimeoutError } from '../errors/query-timeout.error';

// NOTE: SQLSTATE classes 08 (connection exception) and 57P (operator intervention: shutdown,
// terminated backend, cannot connect now) mean the database is out of reach, not that the query
// was wrong; node-level socket errors mean the same.
const UNAVAILABLE_CODES = /^(08|57P0[1-3]|53300)/;
const UNAVAILABLE_SYSCALLS = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN']);
const UNAVAILABLE_MESSAGES = /Connection terminated|connection error|timeout exceeded when trying to connect|Client has encountered a connection error|Cannot use a pool after calling end|Driver not Connected|Client was closed/i;
// NOTE: errors after which the same statement may well succeed: a serialization failure, a
// deadlock, a lock not available (lock_timeout), a statement cancelled (statement_timeout, or
// pg_cancel_backend).
const TRANSIENT_CODES = new Set(['40001', '40P01', '55P03', '57014']);
const SQLSTATE = /^[0-9A-Z]{5}$/;

/** True when `error` says the database is unreachable rather than that a statement failed. */
export function isConnectionError(error: unknown): boolean {
  // NOTE: duck-typed, not `instanceof Error`: socket errors are created by Node's own realm, which
  // differs from the caller's under vm-based runners (jest), where `instanceof Error` is false.
  if (typeof error !== 'object' || error === null) return false;
  // NOTE: the repository hands out errors already translated; the completer must still see
  // connection failures as such (to keep and retry outcomes rather than drop them).
  if (error instanceof QueueUnavailableError || error instanceof QueryTimeoutError) return true;
  if (error instanceof QueueDatabaseError) return false;
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'string' && (UNAVAILABLE_CODES.test(code) || UNAVAILABLE_SYSCALLS.has(code))) return true;
  const { errors, message } = error as { errors?: unknown; message?: unknown };
  if (Array.isArray(errors) && errors.some(isConnectionError)) return true;
  return typeof message === 'string' && UNAVAILABLE_MESSAGES.test(message);
}

/**
 * True when the same statement may succeed if sent again: the database was unreachable, or it
 * cancelled the statement for a reason that passes (see TRANSIENT_CODES).
 */
export function isTransientError(error: unknown): boolean {
  if (isConnectionError(error)) return true;
  const state = error instanceof QueueDatabaseError ? error.sqlState : sqlStateOf(error);
  return state !== null && TRANSIENT_CODES.has(state);
}

/** True when a unique index refused the statement (SQLSTATE 23505), raw or already translated. */
export function isUniqueViolation(error: unknown): boolean {
  return sqlStateOfAny(error) === '23505';
}

/** True when PostgreSQL aborted the statement to break a deadlock (SQLSTATE 40P01), raw or translated. */
export function isDeadlock(error: unknown): boolean {
  return sqlStateOfAny(error) === '40P01';
}

function sqlStateOfAny(error: unknown): string | null {
  return error instanceof QueueDatabaseError ? error.sqlState : sqlStateOf(error);
}

/**
 * The error a caller of the queue gets for `error`: a connection failure becomes a
 * {@link QueueUnavailableError}, any other driver or server error a {@link QueueDatabaseError};
 * errors of the queue's own (bad input found while streaming a COPY, an already translated error)
 * pass unchanged.
 */
export function translateDatabaseError(operation: string, error: unknown): QueueError {
  if (error instanceof QueueUnavailableError || error instanceof QueueDatabaseError) return error;
  if (isConnectionError(error)) return new QueueUnavailableError(operation, error);
  if (error instanceof QueueError) return error;
  return new QueueDatabaseError(operation, sqlStateOf(error), error);
}

/** PostgreSQL's SQLSTATE in a pg error, or in the pg error a TypeORM `QueryFailedError` wraps. */
function sqlStateOf(error: unknown): string | null {
  if (typeof error !== 'object' || error === null) return null;
  for (const candidate of [(error as { code?: unknown }).code, (error as { driverError?: { code?: unknown } }).driverError?.code]) {
    if (typeof candidate === 'string' && SQLSTATE.test(candidate)) return candidate;
  }
  return null;
}
