import { Cron } from 'croner';

/** Why a cron expression or time zone was refused (the caller turns it into a typed error). */
export class CronSyntaxError extends Error {
  constructor(
    readonly field: 'cron' | 'tz',
    readonly value: unknown,
    readonly expected: string,
  ) {
    super(`Invalid ${field}: ${String(value)}; expected ${expected}`);
  }
}

/** The syntax a cron expression may use, for error messages and docs. */
export const CRON_SYNTAX =
  'a cron expression of 5 fields (minute hour day-of-month month day-of-week), or 6 with seconds first, or @yearly, @monthly, @weekly, @daily, @hourly';

/** Cached parsed expressions: schedules of one app share a handful of (cron, tz) pairs. */
const CACHE_SIZE = 1000;
const cache = new Map<string, CronExpression>();

/**
 * A parsed cron expression in an IANA time zone, and its slots. Parsing and next-time computation
 * are croner's (https://github.com/Hexagon/croner), whose DST rules we document in
 * docs/schedules.md: a fixed-time slot that falls in a spring-forward gap runs at the first valid
 * time after the gap, one that occurs twice in a fall-back overlap runs once, at its first
 * occurrence; interval expressions (a wildcard, step, range or list in seconds, minutes or hours)
 * skip the gap and run in both passes of a repeated hour, every slot being a distinct instant.
 */
export class CronExpression {
  private constructor(
    readonly cron: string,
    readonly tz: string,
    private readonly pattern: Cron,
  ) {}

  /**
   * Parses `cron` in zone `tz`, or throws a {@link CronSyntaxError} naming which of them is wrong.
   * An expression that matches no time at all (`0 0 30 2 *`) is refused too.
   */
  static parse(cron: unknown, tz: unknown = 'UTC'): CronExpression {
    if (typeof tz !== 'string' || tz.length === 0 || !isTimeZone(tz)) throw new CronSyntaxError('tz', tz, 'an IANA time zone such as "Europe/Berlin" or "UTC"');
    if (typeof cron !== 'string' || cron.trim() === '' || cron.length > 256) throw new CronSyntaxError('cron', cron, CRON_SYNTAX);
    const cacheKey = `${tz}\u0000${cron}`;
    const known = cache.get(cacheKey);
    if (known) return known;
    let pattern: Cron;
    try {
      // NOTE: 'paused' and no function: croner only parses and computes, it never arms a timer.
      pattern = new Cron(cron, { timezone: tz, mode: '5-or-6-parts', paused: true });
    } catch (error) {
      throw new CronSyntaxError('cron', cron, `${CRON_SYNTAX} (${(error as Error).message})`);
    }
    const expression = new CronExpression(cron, tz, pattern);
    if (expression.nextAfter(new Date()) === null) throw new CronSyntaxError('cron', cron, `${CRON_SYNTAX} that matches some time (this one never does)`);
    if (cache.size >= CACHE_SIZE) cache.delete(cache.keys().next().value as string);
    cache.set(cacheKey, expression);
    return expression;
  }

  /** The first slot strictly after `time`, or null when there is none (before year 10000). */
  nextAfter(time: Date): Date | null {
    return this.pattern.nextRun(time);
  }

  /** Up to `count` slots strictly before `time`, latest first. */
  latestBefore(time: Date, count: number): Date[] {
    return this.pattern.previousRuns(count, time);
  }
}

function isTimeZone(tz: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}
