import { serializeJson } from '../producer/job-data.validator';
import { assertInteger, assertKnownKeys, assertName, validateRunOptions } from '../producer/job-options.validator';
import { KNOWN_OPTIONS } from '../producer/known-options';
import { InvalidJobOptionError } from '../errors/invalid-job-option.error';
import { MAX_INT32 } from '../queue.constants';
import type { ScheduleCatchUp, ScheduleOverlap, ScheduleTiming } from '../interfaces/schedule.interface';
import { CronExpression, CronSyntaxError } from './cron-expression';

/** Longest schedule key. */
export const MAX_SCHEDULE_KEY_LENGTH = 255;
export const DEFAULT_CATCH_UP: ScheduleCatchUp = 'latest';
export const DEFAULT_CATCH_UP_LIMIT = 100;
export const MAX_CATCH_UP_LIMIT = 10_000;

type ErrorFactory = (option: string, value: unknown, expected: string) => Error;
const jobOptionError: ErrorFactory = (option, value, expected) => new InvalidJobOptionError(option, value, expected);

/** A schedule validated and serialised, ready to be stored. */
export interface ScheduleRow {
  key: string;
  queue: string;
  name: string;
  cron: string;
  tz: string;
  /** JSON text. */
  data: string;
  /** JSON text of the run options. */
  options: string;
  catchUp: ScheduleCatchUp;
  catchUpLimit: number;
  overlap: ScheduleOverlap;
  expression: CronExpression;
}

export function assertScheduleKey(key: unknown, fail: ErrorFactory = jobOptionError): asserts key is string {
  if (
    typeof key !== 'string' ||
    key.length === 0 ||
    key.length > MAX_SCHEDULE_KEY_LENGTH ||
    key.trim() !== key ||
    /[\u0000-\u001f\u007f]/.test(key) ||
    !(key as string & { isWellFormed(): boolean }).isWellFormed()
  ) {
    throw fail('key', key, `a schedule key: a non-empty string of at most ${MAX_SCHEDULE_KEY_LENGTH} characters without control characters, lone UTF-16 surrogates or leading/trailing spaces`);
  }
}

/**
 * Checks a schedule (runtime spec or decorator options plus the handler's queue and name) and
 * serialises it; throws `fail(option, value, expected)` naming the first bad option: by default an
 * `InvalidJobOptionError`, at boot an `InvalidModuleOptionsError` naming the declaring method.
 */
export function validateSchedule(
  key: unknown,
  target: { queue: unknown; name: unknown; cron: unknown },
  timing: ScheduleTiming,
  fail: ErrorFactory = jobOptionError,
): ScheduleRow {
  assertScheduleKey(key, fail);
  assertName('queue', target.queue, fail);
  assertName('name', target.name, fail);
  let expression: CronExpression;
  try {
    expression = CronExpression.parse(target.cron, timing.tz ?? 'UTC');
  } catch (error) {
    if (error instanceof CronSyntaxError) throw fail(error.field, error.value, error.expected);
    throw error;
  }
  const catchUp = timing.catchUp ?? DEFAULT_CATCH_UP;
  if (catchUp !== 'none' && catchUp !== 'latest' && catchUp !== 'all') throw fail('catchUp', catchUp, "'none', 'latest' or 'all'");
  const catchUpLimit = timing.catchUpLimit ?? DEFAULT_CATCH_UP_LIMIT;
  assertInteger('catchUpLimit', catchUpLimit, 1, MAX_CATCH_UP_LIMIT, fail);
  const overlap = timing.overlap ?? 'allow';
  if (overlap !== 'allow' && overlap !== 'skip') throw fail('overlap', overlap, "'allow' or 'skip'");
  const options = timing.options ?? {};
  if (typeof options !== 'object' || options === null) throw fail('options', options, 'an object { priority?, maxAttempts?, backoff?, timeoutMs? }');
  assertKnownKeys(options, KNOWN_OPTIONS.scheduleJob, 'options.', fail);
  validateRunOptions(options, 'options.', fail);
  if (options.priority !== undefined) assertInteger('options.priority', options.priority, -MAX_INT32, MAX_INT32, fail);
  let data: string;
  try {
    data = serializeJson(timing.data ?? null, 'data');
  } catch (error) {
    if (fail === jobOptionError) throw error;
    throw fail('data', timing.data, `JSON data (${(error as Error).message})`);
  }
  return { key, queue: target.queue, name: target.name, cron: expression.cron, tz: expression.tz, data, options: JSON.stringify(options), catchUp, catchUpLimit, overlap, expression };
}
