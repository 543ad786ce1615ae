import { InvalidJobOptionError } from '../errors/invalid-job-option.error';
import { serializeJson } from '../producer/job-data.validator';

/** Largest progress object, as JSON (it is stored on the job row, which every update copies). */
export const MAX_PROGRESS_BYTES = 1024;
/** Longest log entry, in UTF-8 bytes; longer ones are cut. */
export const MAX_LOG_BYTES = 2048;

/** A progress value as JSON text, or `InvalidJobOptionError` naming `progress`. */
export function progressJson(value: unknown): string {
  if (typeof value === 'number') {
    if (!Number.isFinite(value) || value < 0 || value > 100) throw new InvalidJobOptionError('progress', value, 'a number from 0 to 100, or a JSON object');
    return String(value);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new InvalidJobOptionError('progress', value, 'a number from 0 to 100, or a JSON object');
  }
  const json = serializeJson(value, 'progress');
  if (Buffer.byteLength(json) > MAX_PROGRESS_BYTES) {
    throw new InvalidJobOptionError('progress', `${json.slice(0, 40)}…`, `at most ${MAX_PROGRESS_BYTES} bytes of JSON (got ${Buffer.byteLength(json)})`);
  }
  return json;
}

const encoder = new TextEncoder();
const cutBuffer = new Uint8Array(MAX_LOG_BYTES);

/** A log text made storable (no NUL, which PostgreSQL text refuses) and cut to {@link MAX_LOG_BYTES}. */
export function logText(text: unknown): { message: string; truncated: boolean } {
  if (typeof text !== 'string') throw new InvalidJobOptionError('text', text, 'a string (the log entry)');
  // NOTE: 3 bytes at most per UTF-16 unit: shorter texts cannot be over the limit.
  let message = text.includes('\u0000') ? text.replace(/\u0000/g, '\uFFFD') : text;
  if (message.length * 3 <= MAX_LOG_BYTES || Buffer.byteLength(message) <= MAX_LOG_BYTES) return { message, truncated: false };
  // NOTE: encodeInto stops before a character that does not fit whole, so no character is split.
  const { read } = encoder.encodeInto(message, cutBuffer);
  message = message.slice(0, read);
  return { message, truncated: true };
}
