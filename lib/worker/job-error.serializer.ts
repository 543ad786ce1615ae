import { inspect } from 'node:util';
import type { JobError } from '../interfaces/job.interface';

/** A thrown value as stored in `lastError`. A non-Error is described readably, never as `{}`. */
export function serializeJobError(thrown: unknown, attempt: number): JobError {
  const at = new Date().toISOString();
  // NOTE: duck-typed rather than `instanceof Error`, so errors from another realm (vm, jest)
  // keep their message and stack.
  if (isErrorLike(thrown)) {
    return { name: thrown.name, message: thrown.message, stack: thrown.stack, attempt, at };
  }
  const message = typeof thrown === 'string' ? thrown : inspect(thrown, { depth: 4, breakLength: Infinity });
  return { name: 'NonErrorThrown', message: `Handler threw a non-Error value: ${message}`, attempt, at };
}

/**
 * JSON text of an error for the `last_error` column. What jsonb would refuse (NUL characters, lone
 * UTF-16 surrogates) becomes U+FFFD: an error message must never make its outcome unwritable.
 */
export function jobErrorJson(error: JobError): string {
  return JSON.stringify(error, (_key, value: unknown) =>
    typeof value === 'string' ? (value as string & { toWellFormed(): string }).toWellFormed().replace(/\u0000/g, '\ufffd') : value,
  );
}

function isErrorLike(value: unknown): value is Error {
  if (value instanceof Error) return true;
  const v = value as { name?: unknown; message?: unknown; stack?: unknown } | null;
  return typeof v === 'object' && v !== null && typeof v.message === 'string' && typeof v.name === 'string' && typeof v.stack === 'string';
}
