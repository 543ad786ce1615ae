import { QueueError } from './queue.error';
import { InvalidJobOptionError } from './invalid-job-option.error';

/** What a {@link RateLimitedError} holds back: the job's whole queue, or only its group. */
export type RateLimitScope = 'queue' | 'group';

/** Longest block a RateLimitedError may ask for: about 24.8 days (the longest timer Node.js keeps). */
export const MAX_RATE_LIMIT_DELAY_MS = 2 ** 31 - 1;

/**
 * Thrown by a handler when the service it calls says "too many requests" (an HTTP 429 and its
 * Retry-After): the job goes back to pending without counting an attempt, and no node starts
 * another job of its queue (`scope: 'queue'`, the default) or of its group (`scope: 'group'`)
 * until `retryAfterMs` has passed. A job without a group that throws it with `scope: 'group'` is
 * held back alone.
 *
 * ```ts
 * if (res.status === 429) throw new RateLimitedError(res.retryAfterMs, { scope: 'group' });
 * ```
 *
 * Bad arguments (a negative, non-finite or non-number delay, an unknown scope) make the
 * constructor throw an {@link InvalidJobOptionError} naming them, which fails the attempt as any
 * other error would.
 */
export class RateLimitedError extends QueueError {
  /** The delay, in whole ms (a fraction is rounded up). */
  readonly retryAfterMs: number;
  readonly scope: RateLimitScope;

  constructor(retryAfterMs: number, options: { scope?: RateLimitScope } = {}) {
    const [ms, scope] = validate(retryAfterMs, options);
    super(`Rate limited: no job of this ${scope} starts for ${ms} ms`);
    this.retryAfterMs = ms;
    this.scope = scope;
  }
}

function validate(retryAfterMs: unknown, options: unknown): [number, RateLimitScope] {
  if (typeof retryAfterMs !== 'number' || !Number.isFinite(retryAfterMs) || retryAfterMs < 0 || retryAfterMs > MAX_RATE_LIMIT_DELAY_MS) {
    throw new InvalidJobOptionError('RateLimitedError(retryAfterMs)', retryAfterMs, `a finite number of ms from 0 to ${MAX_RATE_LIMIT_DELAY_MS}`);
  }
  if (options === null || typeof options !== 'object') {
    throw new InvalidJobOptionError('RateLimitedError(options)', options, `an object: { scope?: 'queue' | 'group' }`);
  }
  const scope = (options as { scope?: unknown }).scope ?? 'queue';
  if (scope !== 'queue' && scope !== 'group') {
    throw new InvalidJobOptionError('RateLimitedError(options.scope)', scope, `'queue' or 'group'`);
  }
  return [Math.ceil(retryAfterMs), scope];
}
