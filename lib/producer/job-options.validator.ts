import { InvalidJobOptionError } from '../errors/invalid-job-option.error';
import { InvalidModuleOptionsError } from '../errors/invalid-module-options.error';
import { MAX_GROUP_LENGTH, MAX_INT32, MAX_NAME_LENGTH, MAX_RUN_AT_MS, MAX_UNIQUE_KEY_LENGTH, MIN_RUN_AT_MS } from '../queue.constants';
import type { BackoffOptions, JobOptions, JobRunOptions } from '../interfaces/job-options.interface';
import type { ProcessorOptions } from '../interfaces/processor-options.interface';
import { KNOWN_OPTIONS, suggestOption } from './known-options';
import { validateLimitOptions } from './limit-options.validator';
import { validateDependencyOptions } from './flow-options.validator';

export type ErrorFactory = (option: string, value: unknown, expected: string) => Error;
const jobOptionError: ErrorFactory = (option, value, expected) => new InvalidJobOptionError(option, value, expected);
const moduleOptionError: ErrorFactory = (option, value, expected) => new InvalidModuleOptionsError(option, value, expected);

/** Queue and job names: non-empty, at most 128 characters, no control characters, no edge spaces. */
export function assertName(kind: 'queue' | 'name', value: unknown, fail: ErrorFactory = jobOptionError): asserts value is string {
  if (
    typeof value !== 'string' ||
    value.length === 0 ||
    value.length > MAX_NAME_LENGTH ||
    value.trim() !== value ||
    /[\u0000-\u001f\u007f]/.test(value) ||
    // NOTE: a lone UTF-16 surrogate would be stored as U+FFFD in text, and fails a JSON batch whole.
    !(value as string & { isWellFormed(): boolean }).isWellFormed()
  ) {
    throw fail(kind, value, `a non-empty string of at most ${MAX_NAME_LENGTH} characters without control characters, lone UTF-16 surrogates or leading/trailing spaces`);
  }
}

export function assertInteger(option: string, value: unknown, min: number, max = MAX_INT32, fail: ErrorFactory = jobOptionError): asserts value is number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw fail(option, value, `an integer from ${min} to ${max}`);
  }
}

/**
 * Refuses any key of `options` that is not in `known`, naming it (with `prefix`) and suggesting the
 * name it most likely meant.
 */
export function assertKnownKeys(options: object, known: readonly string[], prefix: string, fail: ErrorFactory = jobOptionError): void {
  for (const key in options) {
    if (!Object.prototype.hasOwnProperty.call(options, key) || known.includes(key)) continue;
    const suggestion = suggestOption(key, known);
    throw fail(
      `${prefix}${key}`,
      (options as Record<string, unknown>)[key],
      `no option of that name${suggestion ? `: did you mean ${prefix}${suggestion}?` : ''} (${prefix ? `${prefix.slice(0, -1)} takes` : 'options are'} ${known.join(', ')})`,
    );
  }
}

function assertBackoff(prefix: string, backoff: unknown, fail: ErrorFactory): asserts backoff is BackoffOptions {
  if (typeof backoff !== 'object' || backoff === null) throw fail(prefix, backoff, "an object { type: 'fixed' | 'exponential', delayMs }");
  assertKnownKeys(backoff, KNOWN_OPTIONS.backoff, `${prefix}.`, fail);
  const b = backoff as Partial<BackoffOptions>;
  if (b.type !== 'fixed' && b.type !== 'exponential') throw fail(`${prefix}.type`, b.type, "'fixed' or 'exponential'");
  assertInteger(`${prefix}.delayMs`, b.delayMs, 0, MAX_INT32, fail);
  if (b.maxDelayMs !== undefined) assertInteger(`${prefix}.maxDelayMs`, b.maxDelayMs, b.delayMs, MAX_INT32, fail);
  if (b.jitter !== undefined && (typeof b.jitter !== 'number' || !(b.jitter >= 0 && b.jitter <= 1))) {
    throw fail(`${prefix}.jitter`, b.jitter, 'a number from 0 to 1');
  }
}

/** The options shared by module, processor and job levels. */
export function validateRunOptions(options: JobRunOptions, prefix = '', fail: ErrorFactory = jobOptionError): void {
  if (options.maxAttempts !== undefined) assertInteger(`${prefix}maxAttempts`, options.maxAttempts, 1, MAX_INT32, fail);
  if (options.timeoutMs !== undefined) assertInteger(`${prefix}timeoutMs`, options.timeoutMs, 1, MAX_INT32, fail);
  if (options.backoff !== undefined) assertBackoff(`${prefix}backoff`, options.backoff, fail);
}

/** Everything `add()` accepts; throws {@link InvalidJobOptionError} naming the first bad option. */
export function validateJobOptions(options: JobOptions): void {
  if (typeof options !== 'object' || options === null) throw jobOptionError('options', options, 'an object');
  assertKnownKeys(options, KNOWN_OPTIONS.job, '');
  validateRunOptions(options);
  if (options.priority !== undefined) assertInteger('priority', options.priority, -MAX_INT32, MAX_INT32);
  if (options.unique !== undefined) validateUniqueOptions(options.unique);
  if (options.group !== undefined) assertKeyText('group', options.group, MAX_GROUP_LENGTH);
  if (options.runAt !== undefined && options.delayMs !== undefined) {
    throw jobOptionError('runAt/delayMs', `${options.runAt} / ${options.delayMs}`, 'at most one of runAt and delayMs');
  }
  if (options.runAt !== undefined) {
    const at = options.runAt instanceof Date ? options.runAt.getTime() : NaN;
    if (!(at >= MIN_RUN_AT_MS && at <= MAX_RUN_AT_MS)) throw jobOptionError('runAt', options.runAt, 'a valid Date from year 1 to year 9999');
  }
  // NOTE: bounded so that now + delay stays within what `runAt` accepts (PostgreSQL would refuse it).
  if (options.delayMs !== undefined) assertInteger('delayMs', options.delayMs, 0, MAX_RUN_AT_MS - Date.now());
  if (options.dependsOn !== undefined || options.onChildFailure !== undefined) validateDependencyOptions(options);
}

/**
 * A key-like text option (a unique key, a group): a non-empty string of at most `maxLength`
 * characters that text columns store as given. The error says what was given instead.
 */
function assertKeyText(option: string, value: unknown, maxLength: number): asserts value is string {
  if (
    typeof value !== 'string' ||
    value.length === 0 ||
    value.length > maxLength ||
    // NOTE: text cannot hold NUL, and a lone surrogate would be stored as U+FFFD (another key).
    value.includes('\u0000') ||
    !(value as string & { isWellFormed(): boolean }).isWellFormed()
  ) {
    const got =
      typeof value !== 'string'
        ? `a ${value === null ? 'null' : Array.isArray(value) ? 'array' : typeof value}`
        : value.length === 0
          ? 'an empty string'
          : value.length > maxLength
            ? `a string of ${value.length} characters`
            : 'a string with NUL or a lone UTF-16 surrogate';
    throw jobOptionError(option, value, `a non-empty string of at most ${maxLength} characters without NUL or lone UTF-16 surrogates, not ${got}`);
  }
}

function validateUniqueOptions(unique: unknown): void {
  if (typeof unique !== 'object' || unique === null) throw jobOptionError('unique', unique, "an object { key, until?: 'finish' | 'start', windowMs?, replace? }");
  assertKnownKeys(unique, KNOWN_OPTIONS.unique, 'unique.');
  const u = unique as Record<string, unknown>;
  assertKeyText('unique.key', u.key, MAX_UNIQUE_KEY_LENGTH);
  if (u.until !== undefined && u.until !== 'finish' && u.until !== 'start') throw jobOptionError('unique.until', u.until, "'finish' or 'start'");
  if (u.windowMs !== undefined) {
    assertInteger('unique.windowMs', u.windowMs, 1, Number.MAX_SAFE_INTEGER);
    if (u.until !== undefined) throw jobOptionError('unique.until', u.until, 'no until with windowMs: a throttle window holds the key whatever the state of its job');
  }
  if (u.replace !== undefined && typeof u.replace !== 'boolean') throw jobOptionError('unique.replace', u.replace, 'a boolean');
}

/** `@Processor()` options, checked at boot. */
export function validateProcessorOptions(queue: string, options: ProcessorOptions, className: string): void {
  const fail: ErrorFactory = (option, value, expected) => moduleOptionError(`${className} @Processor ${option}`, value, expected);
  assertName('queue', queue, fail);
  if (typeof options !== 'object' || options === null) throw fail('options', options, 'an object');
  assertKnownKeys(options, KNOWN_OPTIONS.processor, '', fail);
  if (options.concurrency !== undefined) assertInteger('concurrency', options.concurrency, 1, 10_000, fail);
  if (options.defaultJobOptions !== undefined) {
    if (typeof options.defaultJobOptions !== 'object' || options.defaultJobOptions === null) throw fail('defaultJobOptions', options.defaultJobOptions, 'an object');
    assertKnownKeys(options.defaultJobOptions, KNOWN_OPTIONS.runDefaults, 'defaultJobOptions.', fail);
    validateRunOptions(options.defaultJobOptions, 'defaultJobOptions.', fail);
  }
  validateLimitOptions(options, '', fail);
}

export { moduleOptionError };
