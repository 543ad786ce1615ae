import type { JobRunOptions } from './job-options.interface';

/** What a schedule does with slots that passed while no worker ran: see docs/schedules.md. */
export type ScheduleCatchUp = 'none' | 'latest' | 'all';

/** Whether a new run may start while the previous run of the schedule is unfinished. */
export type ScheduleOverlap = 'allow' | 'skip';

/** The options each run of a schedule is added with (a subset of `JobOptions`). */
export interface ScheduleJobOptions extends JobRunOptions {
  /** Higher runs first (default 0). */
  priority?: number;
}

/** What both kinds of schedule share: `@Schedule(cron, options)` and `queue.schedule(key, spec)`. */
export interface ScheduleTiming {
  /**
   * IANA time zone the expression is read in (default `'UTC'`), e.g. `'Europe/Berlin'`. DST: see
   * docs/schedules.md (a daily 02:30 runs once on both change days).
   */
  tz?: string;
  /** The data of every run (JSON; default null). */
  data?: unknown;
  /** The options of every run: priority, maxAttempts, backoff, timeoutMs. */
  options?: ScheduleJobOptions;
  /**
   * Slots missed while no worker ran (later than a minute, or than the expression's period when
   * shorter): `'none'` skips them, `'latest'` (default) runs the most recent of them once, `'all'`
   * runs each, up to `catchUpLimit`.
   */
  catchUp?: ScheduleCatchUp;
  /** With `catchUp: 'all'`, at most this many missed slots run (the latest ones); default 100, at most 10,000. */
  catchUpLimit?: number;
  /** `'skip'`: no new run while the previous one is pending or active (its slot is dropped). Default `'allow'`. */
  overlap?: ScheduleOverlap;
}

/** A runtime schedule, as `QueueService.schedule(key, spec)` takes it. */
export interface ScheduleSpec extends ScheduleTiming {
  /** The queue of the jobs. A queue no processor handles anywhere is allowed (another service may own it). */
  queue: string;
  /** The job name of the runs. */
  name: string;
  /** 5 fields (minute hour day-of-month month day-of-week), 6 with seconds first, or `@daily` and friends. */
  cron: string;
}

/** `@Schedule(cron, options)`: `key` defaults to `<queue>:<job name>`. */
export interface ScheduleDecoratorOptions extends ScheduleTiming {
  /** The schedule's key, unique in the table (default `<queue>:<job name>`). */
  key?: string;
}

/** A schedule as stored (`QueueService.getSchedules()`). */
export interface ScheduleInfo {
  key: string;
  queue: string;
  name: string;
  cron: string;
  tz: string;
  data: unknown;
  options: ScheduleJobOptions;
  catchUp: ScheduleCatchUp;
  catchUpLimit: number;
  overlap: ScheduleOverlap;
  /** The next slot to enqueue (while paused: where it stood). */
  nextRunAt: Date;
  /** The slot of the latest run enqueued (or the time of the latest `triggerSchedule()`), null before the first. */
  lastRunAt: Date | null;
  /** The id of that run's job. */
  lastJobId: string | null;
  paused: boolean;
  /** `'code'`: declared with `@Schedule` (reconciled at boot); `'runtime'`: made with `queue.schedule()`. */
  source: 'code' | 'runtime';
  /** For code schedules: the `Class.method` that declares it. */
  declaredBy: string | null;
  createdAt: Date;
  updatedAt: Date;
}
