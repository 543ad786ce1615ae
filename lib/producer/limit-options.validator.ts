import { MAX_INT32 } from '../queue.constants';
import { assertInteger, assertKnownKeys, type ErrorFactory } from './job-options.validator';
import { KNOWN_OPTIONS } from './known-options';
import type { QueueLimits, QueueLimitsUpdate, RateLimit } from '../interfaces/processor-options.interface';

const RATE_LIMIT_SHAPE = 'an object { max, perMs } of integers >= 1';

/**
 * The limits of `@Processor()` options (or, with `allowNull`, of an `updateQueue()` call, where null
 * removes an override); throws what `fail` makes, naming the first bad option with `prefix`.
 */
export function validateLimitOptions(options: QueueLimits | QueueLimitsUpdate, prefix: string, fail: ErrorFactory, allowNull = false): void {
  const bounded = (key: 'globalConcurrency' | 'groupConcurrency') => {
    const value = options[key];
    if (value === undefined || (allowNull && value === null)) return;
    assertInteger(`${prefix}${key}`, value, 1, MAX_INT32, fail);
  };
  bounded('globalConcurrency');
  bounded('groupConcurrency');
  for (const key of ['rateLimit', 'groupRateLimit'] as const) {
    const value = options[key];
    if (value === undefined || (allowNull && value === null)) continue;
    assertRateLimit(`${prefix}${key}`, value, fail);
  }
}

function assertRateLimit(option: string, value: unknown, fail: ErrorFactory): asserts value is RateLimit {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw fail(option, value, RATE_LIMIT_SHAPE);
  assertKnownKeys(value, KNOWN_OPTIONS.rateLimit, `${option}.`, fail);
  const limit = value as Partial<RateLimit>;
  assertInteger(`${option}.max`, limit.max, 1, MAX_INT32, fail);
  assertInteger(`${option}.perMs`, limit.perMs, 1, MAX_INT32, fail);
}
