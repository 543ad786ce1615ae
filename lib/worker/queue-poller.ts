import { Logger } from '@nestjs/common';
import type { ClaimDefaults, JobRepository } from '../database/job.repository';
import type { Job } from '../interfaces/job.interface';
import { MAX_CLAIM_BATCH } from '../queue.constants';
import type { AttemptHooks } from './job-executor';

export interface QueuePollerSettings {
  queue: string;
  concurrency: number;
  workerId: string;
  lockDurationMs: number;
  pollIntervalMs: number;
  defaults: ClaimDefaults;
}

const MAX_ERROR_BACKOFF_MS = 5000;

/**
 * Claims the due jobs of one queue, as many as it has free slots, in one statement, and hands each
 * to `run`. It claims when woken (notification, in-process add, a finished job freeing a slot, a
 * timer for a delayed job, or the worker's {@link IdleQueueProbe} finding due jobs). One claim is in
 * flight at a time; wakes that arrive meanwhile fold into one more claim.
 */
export class QueuePoller {
  private readonly logger = new Logger('QueueWorker');
  /** Handlers running now: at most `concurrency`. */
  private active = 0;
  /** Attempts whose handler is done but whose outcome is not written yet: at most `concurrency`,
   * so a slow database applies back-pressure to claiming. */
  private settling = 0;
  private claiming?: Promise<void>;
  private again = false;
  /** The last claim filled every free slot, so more jobs may be due: claim when a slot frees. */
  private mayHaveMore = false;
  private stopped = true;
  private dueTimer?: NodeJS.Timeout;
  private dueAt = Infinity;
  private slotWake?: NodeJS.Immediate;
  private failures = 0;
  private retryAt = 0;
  /**
   * Whether the queue has limits, as last heard (from a limited claim or the idle probe): then it
   * is claimed with `claimLimited`, else with the plain claim, which takes nothing from a queue
   * with limits (so a stale belief here never breaks a limit; it only delays the switch until the
   * probe's next answer). Believed at first, so the first claim tells.
   */
  private limitedClaims = true;

  constructor(
    private readonly settings: QueuePollerSettings,
    private readonly repository: JobRepository,
    /** Runs one claimed job; `claimedAt` is when its claim statement was sent (its lease's lower bound). */
    private readonly run: (job: Job, hooks: AttemptHooks, claimedAt: number) => void,
  ) {}

  get queue(): string {
    return this.settings.queue;
  }

  /** Whether this poller claims with the limited claim (see `limitedClaims`). */
  get limited(): boolean {
    return this.limitedClaims;
  }

  /** What the idle probe found about the queue's limits. */
  learnLimited(limited: boolean): void {
    this.limitedClaims = limited;
  }

  start(): void {
    this.stopped = false;
    this.wake();
  }

  /**
   * Whether a poll should look for due jobs of this queue: running, no claim in flight, a free slot,
   * not backing off after a database error. A busy queue needs none: a freed slot claims again.
   */
  get idle(): boolean {
    return !this.stopped && !this.claiming && this.freeSlots() > 0 && Date.now() >= this.retryAt;
  }

  /** Stops claiming; resolves once no claim is in flight. Running jobs are not touched. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.dueTimer);
    if (this.slotWake) clearImmediate(this.slotWake);
    await this.claiming;
  }

  /** Look for due jobs now, or in `inMs` (a delayed job or a retry). */
  wake(inMs = 0): void {
    if (this.stopped) return;
    if (inMs > 0) return this.wakeAt(Date.now() + inMs);
    if (Date.now() < this.retryAt) return; // backing off after a database error
    if (this.freeSlots() <= 0) {
      this.mayHaveMore = true;
      return;
    }
    if (this.claiming) {
      this.again = true;
      return;
    }
    this.claiming = this.claimLoop().finally(() => (this.claiming = undefined));
  }

  private wakeAt(at: number, beyondPoll = false): void {
    // NOTE: one timer per queue, armed for the earliest known due time; later ones are found by
    // the claim that this one triggers or by the poll. Anything due after the next poll is left to
    // the poll (this also keeps far-future times away from setTimeout's 24.8-day limit), except
    // when a limit said when it lets jobs start (`beyondPoll`: the poll does not look at limited
    // queues whose jobs are due, it only wakes them).
    if (at >= this.dueAt || (!beyondPoll && at - Date.now() >= this.settings.pollIntervalMs)) return;
    clearTimeout(this.dueTimer);
    this.dueAt = at;
    this.dueTimer = setTimeout(() => {
      this.dueAt = Infinity;
      this.wake();
    }, Math.max(0, at - Date.now()) + 1);
  }

  private async claimLoop(): Promise<void> {
    do {
      this.again = false;
      const free = this.freeSlots();
      if (free <= 0 || this.stopped) {
        this.mayHaveMore = true;
        return;
      }
      const limit = Math.min(free, MAX_CLAIM_BATCH);
      let jobs: Job[];
      let more: boolean;
      let waitMs: number | null = null;
      const claimedAt = Date.now();
      try {
        const { queue, workerId, lockDurationMs, defaults } = this.settings;
        if (this.limitedClaims) {
          const claim = await this.repository.claimLimited(queue, limit, workerId, lockDurationMs, defaults);
          ({ jobs, waitMs, more } = claim);
          // NOTE: a queue without limits (any more) was claimed as the plain claim would; the
          // next claims are plain.
          this.limitedClaims = claim.limited;
          // NOTE: a limited claim may say "more" with no job (global concurrency is full): then
          // claim again when a job of this process ends, not now.
          if (more && jobs.length > 0) this.again = true;
        } else {
          jobs = await this.repository.claim(queue, limit, workerId, lockDurationMs, defaults);
          more = jobs.length === limit;
          if (more) this.again = true;
        }
      } catch (error) {
        this.onClaimError(error);
        return;
      }
      if (this.failures > 0) this.logger.log(`Queue "${this.queue}": claiming again after ${this.failures} failed attempt(s)`);
      this.failures = 0;
      this.retryAt = 0;
      this.mayHaveMore = more;
      if (waitMs !== null) this.wakeAt(Date.now() + waitMs, true);
      for (const job of jobs) this.dispatch(job, claimedAt);
    } while (this.again && !this.stopped);
  }

  private freeSlots(): number {
    const { concurrency } = this.settings;
    return Math.min(concurrency - this.active, 2 * concurrency - this.active - this.settling);
  }

  /** One hooks object for all of this queue's attempts (nothing in it is per job). */
  private readonly hooks: AttemptHooks = {
    handlerDone: (retryInMs) => {
      this.active--;
      this.settling++;
      if (retryInMs !== undefined) this.wake(retryInMs);
      // NOTE: under limits a job counts until its outcome is written: a claim now would find its
      // slot still taken (and hold the queue's lock for nothing). It claims once settled.
      if (this.mayHaveMore && !this.limitedClaims) this.scheduleSlotWake();
    },
    settled: () => {
      this.settling--;
      if (this.mayHaveMore) this.scheduleSlotWake();
    },
  };

  private dispatch(job: Job, claimedAt: number): void {
    this.active++;
    this.run(job, this.hooks, claimedAt);
  }

  /** Coalesces the slots freed by one batch of completions into one claim. */
  private scheduleSlotWake(): void {
    if (this.slotWake || this.stopped) return;
    this.slotWake = setImmediate(() => {
      this.slotWake = undefined;
      this.wake();
    });
  }

  private onClaimError(error: unknown): void {
    this.failures++;
    const delay = Math.min(100 * 2 ** (this.failures - 1), MAX_ERROR_BACKOFF_MS);
    this.retryAt = Date.now() + delay;
    if (this.failures === 1 || this.failures % 20 === 0) {
      this.logger.warn(`Queue "${this.queue}": claim failed (${(error as Error)?.message ?? error}); retrying in ${delay} ms`);
    }
    this.wakeAt(this.retryAt);
  }
}
