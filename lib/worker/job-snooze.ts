import { InvalidJobOptionError } from '../errors/invalid-job-option.error';
import { MAX_RUN_AT_MS } from '../queue.constants';

/**
 * What `job.snooze(ms)` returns: a handler that returns it ends its attempt without counting it and
 * without an error; the job runs again in `delayMs`.
 */
export class JobSnooze {
  constructor(readonly delayMs: number) {}

  /** Validates the delay; a bad one throws, which fails the attempt with that error. */
  static of(delayMs: unknown): JobSnooze {
    if (typeof delayMs !== 'number' || !Number.isInteger(delayMs) || delayMs < 0 || delayMs > MAX_RUN_AT_MS - Date.now()) {
      throw new InvalidJobOptionError('snooze(delayMs)', delayMs, 'an integer number of ms >= 0 that ends before year 10000');
    }
    return new JobSnooze(delayMs);
  }
}
