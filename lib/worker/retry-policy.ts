import type { BackoffOptions } from '../interfaces/job-options.interface';
import { DEFAULT_BACKOFF } from '../queue.constants';

/**
 * The delay before the next attempt after attempt `attempt` (1-based) failed. Pure apart from the
 * jitter's randomness, which `random` lets tests pin.
 */
export function backoffDelayMs(backoff: BackoffOptions, attempt: number, random: () => number = Math.random): number {
  const base =
    backoff.type === 'fixed' ? backoff.delayMs : backoff.delayMs * 2 ** Math.min(Math.max(attempt - 1, 0), 52);
  const capped = Math.min(base, backoff.maxDelayMs ?? Number.MAX_SAFE_INTEGER);
  const jitter = backoff.jitter ?? DEFAULT_BACKOFF.jitter;
  return Math.round(capped * (1 - jitter * random()));
}
