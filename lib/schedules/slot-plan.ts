import type { CronExpression } from './cron-expression';

/** What a schedule does with the slots that passed while no worker enqueued them. */
export type CatchUp = 'none' | 'latest' | 'all';

/**
 * How late a slot may be enqueued and still count as on time rather than missed: a minute, or the
 * expression's period when that is shorter (a per-second schedule's slot is missed after a second).
 */
export const MISSED_AFTER_MS = 60_000;

/** A due schedule, as the enqueuer sees it. */
export interface DueSchedule {
  expression: CronExpression;
  /** The first slot not enqueued yet (at or before `now`). */
  nextRunAt: Date;
  catchUp: CatchUp;
  catchUpLimit: number;
  /** overlap 'skip': at most one new run, none while the previous run is unfinished. */
  skipOverlap: boolean;
  /** Whether the previous run (`lastJobId`) is still pending or active. */
  previousUnfinished: boolean;
}

export interface SlotPlan {
  /** The slots to enqueue a job for, oldest first. */
  slots: Date[];
  /** The first slot after `now`: the schedule's new `next_run_at`. */
  nextRunAt: Date;
}

/**
 * Which slots of a due schedule to enqueue at `now` (the database's clock), and its next run.
 * The slots from `nextRunAt` up to `now` are on time when no older than `MISSED_AFTER_MS` (or the
 * period); the older ones were missed (every worker was down, or the schedule was just resumed
 * past them) and `catchUp` decides: `'none'` drops them, `'latest'` keeps the latest of them,
 * `'all'` keeps up to `catchUpLimit` of them (the latest ones). Pure: unit-tested with fixed dates.
 * Returns null when the expression has no slot after `now` (the schedule is over).
 */
export function planSlots(due: DueSchedule, now: Date): SlotPlan | null {
  const { expression } = due;
  const next = expression.nextAfter(now);
  if (next === null) return null;
  const after = expression.nextAfter(next);
  const period = after === null ? MISSED_AFTER_MS : after.getTime() - next.getTime();
  const onTimeFrom = Math.max(due.nextRunAt.getTime(), now.getTime() - Math.min(MISSED_AFTER_MS, period));
  const slots: Date[] = [];
  // Missed slots (before onTimeFrom, not before nextRunAt), latest first.
  const missedWanted = due.catchUp === 'none' ? 0 : due.catchUp === 'latest' ? 1 : due.catchUpLimit;
  if (missedWanted > 0 && onTimeFrom > due.nextRunAt.getTime()) {
    for (const slot of expression.latestBefore(new Date(onTimeFrom), missedWanted)) {
      if (slot.getTime() < due.nextRunAt.getTime()) break;
      slots.unshift(slot);
    }
  }
  // On-time slots: at most a minute's worth (croner's slots are whole seconds).
  for (let slot = expression.nextAfter(new Date(onTimeFrom - 1)); slot !== null && slot.getTime() <= now.getTime(); slot = expression.nextAfter(slot)) {
    slots.push(slot);
  }
  if (due.skipOverlap) return { slots: due.previousUnfinished || slots.length === 0 ? [] : [slots[slots.length - 1]], nextRunAt: next };
  return { slots, nextRunAt: next };
}
