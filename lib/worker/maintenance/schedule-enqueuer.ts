import { Logger } from '@nestjs/common';
import type { DueScheduleRow, ScheduleAdvance, ScheduleRepository } from '../../database/schedule.repository';
import { CronExpression } from '../../schedules/cron-expression';
import { planSlots, type SlotPlan } from '../../schedules/slot-plan';

/** Schedules taken per transaction; a fuller backlog is worked through in several. */
export const SCHEDULE_BATCH = 1000;
/**
 * Longest sleep between two looks at the schedule table: changes made by any process are heard at
 * once on the table's channel, so this only bounds how long a missed notification goes unnoticed.
 * One cheap indexed statement per look: well under one query per second per process.
 */
export const SCHEDULE_RECHECK_MS = 5000;
/**
 * Most slot jobs one tick inserts: the schedules after the one that reaches it are left for the next
 * tick (a long downtime with `catchUp: 'all'` could otherwise make one transaction insert millions).
 */
export const MAX_SLOTS_PER_TICK = 10_000;
/** When due schedules are locked by another process's tick: look again this soon. */
const BUSY_RETRY_MS = 250;
/** A schedule whose expression has no slot left (or cannot be read any more) moves here. */
const NEVER_MS = Date.UTC(9999, 11, 31);

/**
 * Enqueues the jobs of due cron schedules, one per slot, in every worker process: no leader whose
 * death stops the schedules. Each tick takes due schedule rows FOR UPDATE SKIP LOCKED (so every
 * schedule is taken by one process at a time), computes their slots here (catch-up, overlap),
 * inserts one job per slot (a unique index on schedule key and slot makes a second insert of a slot
 * a no-op, whichever process or app version tries), and moves each schedule's next run, with a
 * compare-and-set, in the same transaction. Between ticks it sleeps until the earliest next run, as
 * the database's clock says (at most SCHEDULE_RECHECK_MS); `wake()` (a schedule changed) cuts the
 * sleep short. Errors are logged once per outage and retried; it never throws.
 */
export class ScheduleEnqueuer {
  private readonly logger = new Logger('QueueScheduler');
  private timer?: NodeJS.Timeout;
  /** When the armed timer fires (epoch ms), and whether it fires for a due schedule (tick first). */
  private armedAt = Infinity;
  private armedForDue = false;
  private cycle?: Promise<void>;
  /** A wake-up heard during a cycle: look again right after it, due in this many ms. */
  private wokenDuringCycle?: number;
  /** Not started, or stopped: no timer is armed. */
  private stopped = true;
  /** Stopped: a cycle under way ends after its current tick. */
  private halted = false;
  private failing = false;

  constructor(
    private readonly schedules: ScheduleRepository,
    private readonly recheckMs = SCHEDULE_RECHECK_MS,
    private readonly maxSlotsPerTick = MAX_SLOTS_PER_TICK,
  ) {}

  start(): void {
    this.stopped = false;
    this.halted = false;
    this.arm(0, false);
  }

  /** Something changed (a schedule was added, moved or resumed): its next run is due in `inMs`. */
  wake(inMs = 0): void {
    if (this.stopped) return;
    if (this.cycle) {
      this.wokenDuringCycle = Math.min(this.wokenDuringCycle ?? Infinity, inMs);
      return;
    }
    if (Date.now() + inMs < this.armedAt) this.arm(inMs, true);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.halted = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.cycle;
  }

  /** Runs the ticks that are due now, once (tests and the bench drive it directly). */
  runOnce(): Promise<void> {
    return this.runCycle(true);
  }

  private arm(inMs: number, forDue: boolean): void {
    clearTimeout(this.timer);
    const delay = Math.max(0, Math.min(inMs, this.recheckMs));
    this.armedAt = Date.now() + delay;
    this.armedForDue = forDue && inMs <= this.recheckMs;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.armedAt = Infinity;
      void this.runCycle(this.armedForDue);
    }, delay);
  }

  private runCycle(tickFirst: boolean): Promise<void> {
    this.cycle ??= this.doCycle(tickFirst).finally(() => {
      this.cycle = undefined;
      const woken = this.wokenDuringCycle;
      this.wokenDuringCycle = undefined;
      if (woken !== undefined && !this.stopped) this.arm(woken, true);
    });
    return this.cycle;
  }

  private async doCycle(tickFirst: boolean): Promise<void> {
    let next: number;
    // Whether the next wake-up is for a schedule known to be due then (tick at once) or a re-check.
    let forDue = false;
    try {
      let inMs = tickFirst ? 0 : await this.schedules.nextDueInMs();
      let busy = false;
      if (inMs === 0) {
        let taken: number;
        let moved: number;
        do {
          ({ taken, moved } = await this.schedules.tick(SCHEDULE_BATCH, (due) => this.decide(due)));
        } while ((taken === SCHEDULE_BATCH || moved < taken) && !this.halted);
        inMs = await this.schedules.nextDueInMs();
        // NOTE: still due after a partial batch: another process holds those rows right now.
        busy = inMs === 0;
      }
      next = busy ? BUSY_RETRY_MS : (inMs ?? this.recheckMs);
      forDue = busy || (inMs !== null && inMs <= this.recheckMs);
      if (this.failing) this.logger.log('Schedule enqueuer resumed');
      this.failing = false;
    } catch (error) {
      if (!this.failing) this.logger.warn(`Schedule enqueuer failed: ${(error as Error)?.message ?? error}; retrying`);
      this.failing = true;
      next = Math.min(1000, this.recheckMs);
    }
    if (!this.stopped && this.wokenDuringCycle === undefined) this.arm(next, forDue);
  }

  /** The slots and next runs of the schedules one tick took (identical schedules are planned once). */
  private decide(due: DueScheduleRow[]): ScheduleAdvance {
    const advance: ScheduleAdvance = { slots: [], moves: [] };
    const plans = new Map<string, SlotPlan | null>();
    for (const row of due) {
      // NOTE: at least one schedule per tick, so a tick always makes progress.
      if (advance.slots.length >= this.maxSlotsPerTick) break;
      const now = Number(row.now);
      const takenMs = Number(row.next_run_at);
      const memo = `${row.cron}\u0000${row.tz}\u0000${takenMs}\u0000${row.catch_up}\u0000${row.catch_up_limit}\u0000${row.overlap}\u0000${row.unfinished}`;
      let plan = plans.get(memo);
      if (plan === undefined) {
        try {
          plan = planSlots(
            {
              expression: CronExpression.parse(row.cron, row.tz),
              nextRunAt: new Date(takenMs),
              catchUp: row.catch_up,
              catchUpLimit: row.catch_up_limit,
              skipOverlap: row.overlap === 'skip',
              previousUnfinished: row.unfinished,
            },
            new Date(now),
          );
        } catch (error) {
          // NOTE: validated when written, so only a zone this Node.js no longer knows lands here;
          // the schedule is parked rather than retried (and logged) on every tick.
          this.logger.error(`Schedule ${JSON.stringify(row.key)} cannot be computed (${(error as Error)?.message ?? error}); it will not run until changed`);
          plan = null;
        }
        plans.set(memo, plan);
      }
      if (plan === null) {
        advance.moves.push({ key: row.key, takenMs, nextMs: NEVER_MS });
        continue;
      }
      for (const slot of plan.slots) advance.slots.push({ key: row.key, slotMs: slot.getTime() });
      advance.moves.push({ key: row.key, takenMs, nextMs: plan.nextRunAt.getTime() });
    }
    return advance;
  }
}
