import { Logger } from '@nestjs/common';
import { performance } from 'node:perf_hooks';
import type { AttemptOutcome, ClaimDefaults, JobRepository, LimitedClaim, PermittedClaim } from '../database/job.repository';
import type { Job } from '../interfaces/job.interface';
import { MAX_CLAIM_BATCH, MIN_SETTLING_ROOM } from '../queue.constants';
import type { AttemptHooks } from './job-executor';
import type { WriteResult } from './job-completer';
import type { RunningJob } from './running-jobs';
import { ClaimBuffer, type ClaimBufferStats } from './claim-buffer';
import { ClaimAheadSizer } from './claim-ahead-sizer';

export interface QueuePollerSettings {
  queue: string;
  concurrency: number;
  workerId: string;
  lockDurationMs: number;
  pollIntervalMs: number;
  defaults: ClaimDefaults;
  /** Claim ahead of free slots into a local buffer (see {@link ClaimAheadSizer}); false: never. */
  claimAhead: false | { maxWaitMs: number };
  /**
   * Whether the queue had limits when this worker declared its own at boot (see `limitedClaims`):
   * the first claim is of that kind. Unknown (undefined): the limited claim, which tells.
   */
  limitedAtBoot?: boolean;
}

/**
 * What the poller does with the jobs it claims. Every claimed job is first admitted (it joins the
 * running set: leases renewed, cancellations heard), then either run or, if it was claimed ahead
 * and never started, handed back.
 */
export interface ClaimedJobRunner {
  /** Registers a claimed job (lease renewals, cancel notices) before it runs or waits. */
  admit(job: Job, claimedAt: number): RunningJob;
  /** Runs an admitted job in a slot. */
  run(entry: RunningJob, hooks: AttemptHooks, claimedAt: number): void;
  /** Hands an admitted job that never started back to pending, its attempt refunded. */
  handBack(entry: RunningJob): void;
  /** Forgets an admitted job that never started and is no longer ours (cancelled, lease lost). */
  drop(entry: RunningJob): void;
  /** Writes an outcome through the completer (the poller's own completions, when it cannot claim). */
  writeOutcome(outcome: AttemptOutcome): Promise<WriteResult>;
}

/** A completion of a limited queue, waiting to be written with the queue's next claim. */
interface PendingCompletion {
  outcome: AttemptOutcome;
  resolve: (result: WriteResult) => void;
}

const MAX_ERROR_BACKOFF_MS = 5000;
/**
 * A worker whose permit is below its fair share (other workers still hold more than theirs, until
 * their jobs end) asks again after this, doubling up to PERMIT_RETRY_MAX_MS.
 */
const PERMIT_RETRY_MS = 5;
const PERMIT_RETRY_MAX_MS = 250;

/** This process's permit for a queue whose only limit is global concurrency (see `acquirePermit`). */
interface PermitState {
  /** When to acquire it again (0: before the next claim): renewal, or a share not yet reached. */
  acquireAt: number;
  /** The current wait before asking again for a share not yet reached. */
  retryMs: number;
}
/**
 * Jobs started from the buffer in one turn of the event loop before the rest wait for the next
 * turn. Quick handlers free their slots in microtasks, so without a bound a full buffer would run
 * in one go and hold up everything else in the process (other queues' notifications and claims,
 * heartbeats) for as long as its jobs take.
 */
const BUFFER_BURST = 64;

/**
 * How many attempts may be done and waiting for their outcome to be written (plus the buffer's
 * size), beyond which no slot is refilled: the back-pressure of a database that writes outcomes
 * slower than the handlers produce them.
 *
 * NOTE: at least {@link MIN_SETTLING_ROOM}, not only twice the concurrency: the completer writes
 * what arrived while its last write was in flight, which at a small concurrency and quick handlers
 * is many times the concurrency. Bounded by twice the concurrency alone, the slots of such a queue
 * sat idle while each write was in flight, and the claim-ahead sizer, which sizes the buffer by the
 * throughput it measures, then sized it small for a throughput this bound had held down (measured:
 * a 20,000-job drain at concurrency 10, 7 % and 20 % faster with the floor of 128 in two series of
 * 10 alternating rounds). A larger floor (256, or one full outcome write of 1,000) measured no
 * faster, and let a draining queue hold so many outcomes back that the pickup latency of another
 * queue in the same process rose by two thirds and the peak memory of a 100,000-job drain by a
 * third to a half (docs/performance.md).
 */
const settlingRoom = (concurrency: number): number => Math.max(2 * concurrency, MIN_SETTLING_ROOM);

/**
 * Claims the due jobs of one queue, as many as it has free slots, in one statement, and hands each
 * to the runner. It claims when woken (notification, in-process add, a finished job freeing a slot,
 * a timer for a delayed job, or the worker's {@link IdleQueueProbe} finding due jobs). One claim is
 * in flight at a time; wakes that arrive meanwhile fold into one more claim.
 *
 * Claiming ahead: when its handlers are quick next to a claim's round trip, the poller also claims
 * a few jobs beyond its free slots into a {@link ClaimBuffer}, sized by {@link ClaimAheadSizer}, and
 * claims again when the buffer is half empty, so the next claim is in flight while the slots run
 * the buffered jobs. `concurrency` still bounds the handlers running at once; buffered jobs are
 * claimed rows (they count against any limit on active jobs, and their leases are renewed), and
 * are handed back refunded at shutdown, on a pause notice, or when the buffer stalls.
 */
export class QueuePoller {
  private readonly logger = new Logger('QueueWorker');
  /** Handlers running now: at most `concurrency`. */
  private active = 0;
  /** Attempts whose handler is done but whose outcome is not written yet: bounded (see
   * `freeSlots`), so a slow database applies back-pressure to claiming. */
  private settling = 0;
  private claiming?: Promise<void>;
  private again = false;
  /** The last claim took all it asked for, so more jobs may be due: claim when room frees. */
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
   * probe's next answer). At first, what the registry said at boot; when unknown, believed, so the
   * first claim tells.
   *
   * NOTE: not "believed, so the first claim tells" whatever the registry said: the first limited
   * claim on a connection compiles the claim function and plans its statements, 15-23 ms of a
   * 20,000-job drain's first claim at concurrency 10 (measured), for a queue that has no limit.
   */
  private limitedClaims: boolean;
  /**
   * Set while the queue's only limit is global concurrency (as the limited claim said): then this
   * process claims within its permit, without taking turns with other nodes' claims.
   */
  private permit?: PermitState;
  private readonly sizer = new ClaimAheadSizer();
  private readonly buffer: ClaimBuffer;
  /** Jobs to hold ahead of the free slots, as last sized (0: no buffer). */
  private ahead = 0;
  /** Bumped by every hand-back of the buffer: a claim in flight across one buffers nothing. */
  private handBacks = 0;
  /** The buffer was handed back because no slot freed: no claiming ahead until one does. */
  private stalled = false;
  /** The buffer's wait counters at the last sizing. */
  private waitSeen = { started: 0, totalWaitMs: 0 };
  /** Jobs started from the buffer in this turn of the event loop (see BUFFER_BURST). */
  private burst = 0;
  private burstEnd?: NodeJS.Immediate;
  /**
   * Limited queues: completions of this queue's attempts, written by the next claim in the same
   * statement (`completeAndClaimLimited`). Under limits a job counts until its outcome is written,
   * so writing first and claiming after would take two round trips per batch.
   */
  private completions: PendingCompletion[] = [];
  private settleFirstClaim!: () => void;
  /**
   * Settles once this poller's first claim has returned or failed, or once it stopped before one
   * (the worker starts its maintenance's first runs after it: see `QueueWorker`).
   */
  readonly firstClaim = new Promise<void>((resolve) => (this.settleFirstClaim = resolve));

  constructor(
    private readonly settings: QueuePollerSettings,
    private readonly repository: JobRepository,
    private readonly runner: ClaimedJobRunner,
  ) {
    this.limitedClaims = settings.limitedAtBoot ?? true;
    const maxWaitMs = settings.claimAhead ? settings.claimAhead.maxWaitMs : 0;
    this.buffer = new ClaimBuffer(maxWaitMs, (entry) => runner.drop(entry), () => this.onStale());
  }

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
    if (!limited) {
      this.permit = undefined;
      this.flushCompletions();
    }
  }

  /** How long buffered jobs waited, and how many were handed back or dropped. */
  get bufferStats(): ClaimBufferStats & { buffered: number; bufferedAborted: number; roundTripMs: number; slotMs: number; ahead: number } {
    return { ...this.buffer.stats, buffered: this.buffer.size, bufferedAborted: this.buffer.countAborted(), roundTripMs: this.sizer.roundTripMs, slotMs: this.sizer.slotMs, ahead: this.ahead };
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

  /**
   * Stops claiming; resolves once no claim is in flight, and hands the buffered jobs back (their
   * writes go through the completer, which shutdown drains). Running jobs are not touched.
   */
  async stop(): Promise<void> {
    this.stopped = true;
    this.settleFirstClaim();
    clearTimeout(this.dueTimer);
    if (this.slotWake) clearImmediate(this.slotWake);
    if (this.burstEnd) clearImmediate(this.burstEnd);
    await this.claiming;
    this.flushCompletions();
    this.handBackBuffered();
    if (this.permit) {
      this.permit = undefined;
      // NOTE: given up so other nodes get this share at once; if this fails it lapses by itself.
      await this.repository.releasePermit(this.queue, this.settings.workerId).catch((error: unknown) =>
        this.logger.debug(`Queue "${this.queue}": could not give up the permit (${(error as Error)?.message ?? error}); it lapses`));
    }
  }

  /**
   * Hands every buffered job back to pending (attempt refunded): the queue was paused (its jobs
   * must not start), or the poller stops. A claim in flight meanwhile buffers nothing either.
   */
  handBackBuffered(): void {
    this.handBacks++;
    for (const { entry } of this.buffer.takeAll()) this.runner.handBack(entry);
  }

  /** Look for due jobs now, or in `inMs` (a delayed job or a retry). */
  wake(inMs = 0): void {
    if (this.stopped) return;
    if (inMs > 0) return this.wakeAt(Date.now() + inMs);
    // NOTE: completions waiting for a claim that will not come now are written on their own.
    if (Date.now() < this.retryAt) return this.flushCompletions(); // backing off after a database error
    if (this.wanted() <= 0) {
      this.mayHaveMore = true;
      this.flushCompletions();
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
      if (this.stopped) return this.flushCompletions();
      // NOTE: no claiming ahead under limits: a buffered job is active and counts against the
      // queue's (or its group's) limit, so a buffer would hold capacity that another node's free
      // slot could use now.
      if (this.settings.claimAhead) {
        this.ahead = this.stalled || this.limitedClaims ? 0 : this.sizer.target(this.settings.concurrency, MAX_CLAIM_BATCH - this.settings.concurrency, this.recentWaitMs());
      }
      const wanted = this.wanted();
      if (wanted <= 0) {
        this.mayHaveMore = true;
        this.flushCompletions();
        return;
      }
      const limit = Math.min(wanted, MAX_CLAIM_BATCH);
      // NOTE: only a limited claim carries completions; for the plain one they go to the completer.
      const completions = this.limitedClaims ? this.completions.splice(0, MAX_CLAIM_BATCH) : [];
      if (!this.limitedClaims) this.flushCompletions();
      let jobs: Job[];
      let more: boolean;
      let waitMs: number | null = null;
      const claimedAt = Date.now();
      const sentAt = performance.now();
      const handBacks = this.handBacks;
      try {
        const { queue, workerId, lockDurationMs, defaults } = this.settings;
        if (this.limitedClaims && this.permit) {
          const acquired = Date.now() >= this.permit.acquireAt;
          if (acquired && !(await this.acquirePermit())) {
            // Permits no longer apply: the completions wait for the next claim, of the new kind.
            this.completions.unshift(...completions);
            this.again = true;
            continue;
          }
          const claim: PermittedClaim = await this.repository.completeAndClaimPermitted(completions.map((c) => c.outcome), queue, limit, workerId, lockDurationMs, defaults);
          for (const c of completions) c.resolve(claim.written.has(c.outcome.id) ? 'written' : 'fenced');
          ({ jobs, waitMs } = claim);
          if (claim.slots === null && acquired) {
            // A permit just given did not apply (limits changed in between): the limited claim
            // tells, shortly (not in a loop, should the two keep disagreeing).
            this.permit = undefined;
            this.wakeAt(Date.now() + PERMIT_RETRY_MS, true);
          } else if (claim.slots === null) {
            // NOTE: no permit that applies (lapsed, voided by a change of limits): acquire again
            // first; the permit function says if permits still apply.
            this.permit!.acquireAt = 0;
            this.again = true;
          }
          // NOTE: a claim below the batch may have stopped at the permit: claim again as this
          // process's jobs end (their completions ride on that claim; other outcomes wake it once
          // written), not now.
          more = claim.slots !== null;
          if (jobs.length >= limit) this.again = true;
        } else if (this.limitedClaims) {
          let claim: LimitedClaim;
          if (completions.length > 0) {
            const combined = await this.repository.completeAndClaimLimited(completions.map((c) => c.outcome), queue, limit, workerId, lockDurationMs, defaults);
            for (const c of completions) c.resolve(combined.written.has(c.outcome.id) ? 'written' : 'fenced');
            claim = combined;
          } else {
            claim = await this.repository.claimLimited(queue, limit, workerId, lockDurationMs, defaults);
          }
          ({ jobs, waitMs } = claim);
          // NOTE: a queue without limits (any more) was claimed as the plain claim would; the
          // next claims are plain. One whose only limit is global concurrency: with a permit.
          this.limitedClaims = claim.limited;
          if (claim.permits) {
            this.permit = { acquireAt: 0, retryMs: PERMIT_RETRY_MS };
            this.again = true;
          }
          // NOTE: a limited claim may say "more" with no job (a group walk cut short): claim
          // again now only if it took jobs; when global concurrency is full ("full"), claim again
          // when a job of this process ends.
          more = claim.more || claim.full;
          if (claim.more && jobs.length > 0) this.again = true;
        } else {
          jobs = await this.repository.claim(queue, limit, workerId, lockDurationMs, defaults);
          more = jobs.length === limit;
          if (more) this.again = true;
        }
      } catch (error) {
        // NOTE: one transaction: nothing of it was written. The completer writes the outcomes (and
        // retries them while the database is away); the claim backs off.
        for (const c of completions) void this.runner.writeOutcome(c.outcome).then(c.resolve);
        this.onClaimError(error);
        this.settleFirstClaim();
        return;
      }
      this.settleFirstClaim();
      this.sizer.claimed(performance.now() - sentAt);
      if (this.failures > 0) this.logger.log(`Queue "${this.queue}": claiming again after ${this.failures} failed attempt(s)`);
      this.failures = 0;
      this.retryAt = 0;
      this.mayHaveMore = more;
      if (waitMs !== null) this.wakeAt(Date.now() + waitMs, true);
      this.accept(jobs, claimedAt, handBacks !== this.handBacks);
      // NOTE: completions beyond one statement's batch go with the next claim, at once.
      if (this.completions.length > 0) this.again = true;
    } while (this.again && !this.stopped);
  }

  /**
   * Acquires (or renews) this process's permit; false when permits no longer apply to the queue
   * (then it claims with the limited claim, or the plain one). A permit below the fair share is
   * asked for again soon, backing off; a full one is renewed at half its lease.
   */
  private async acquirePermit(): Promise<boolean> {
    const { queue, workerId, concurrency, lockDurationMs } = this.settings;
    const permit = await this.repository.acquirePermit(queue, workerId, concurrency, lockDurationMs);
    const state = this.permit!;
    if (permit.mode !== 'permits') {
      this.permit = undefined;
      this.limitedClaims = permit.mode === 'limited';
      return false;
    }
    if (permit.slots < permit.share) {
      state.acquireAt = Date.now() + state.retryMs;
      state.retryMs = Math.min(state.retryMs * 2, PERMIT_RETRY_MAX_MS);
      this.wakeAt(state.acquireAt, true);
    } else {
      state.acquireAt = Date.now() + lockDurationMs / 2;
      state.retryMs = PERMIT_RETRY_MS;
    }
    return true;
  }

  /** Mean wait in the buffer of the jobs that left it since the last call (NaN when none did). */
  private recentWaitMs(): number {
    const { started, totalWaitMs } = this.buffer.stats;
    const mean = started > this.waitSeen.started ? (totalWaitMs - this.waitSeen.totalWaitMs) / (started - this.waitSeen.started) : Number.NaN;
    this.waitSeen = { started, totalWaitMs };
    return mean;
  }

  /** Runs what the free slots take; buffers the rest, or hands it back at once if `handBack`. */
  private accept(jobs: Job[], claimedAt: number, handBack: boolean): void {
    const now = Date.now();
    for (const job of jobs) {
      const entry = this.runner.admit(job, claimedAt);
      if (this.buffer.size === 0 && this.freeSlots() > 0) this.dispatch(entry, claimedAt);
      else if (handBack || this.stopped) this.runner.handBack(entry);
      else this.buffer.push(entry, claimedAt, now);
    }
    this.fillSlots();
  }

  /**
   * How many jobs to claim now: the free slots plus the room in the buffer, or 0 while the buffer
   * is more than half full (so a claim ahead is a batch, not a job at a time).
   */
  private wanted(): number {
    const buffered = this.buffer.size;
    if (buffered > 0 && buffered * 2 > this.ahead) return 0;
    return Math.max(0, this.freeSlots() - buffered) + Math.max(0, this.ahead - buffered);
  }

  private freeSlots(): number {
    const { concurrency } = this.settings;
    return Math.min(concurrency - this.active, settlingRoom(concurrency) + this.ahead - this.active - this.settling);
  }

  /** One hooks object for all of this queue's attempts (nothing in it is per job). */
  private readonly hooks: AttemptHooks = {
    handlerDone: (retryInMs) => {
      this.active--;
      this.settling++;
      this.sizer.finished();
      this.stalled = false;
      if (retryInMs !== undefined) this.wake(retryInMs);
      this.fillSlots();
      // NOTE: under limits a job counts until its outcome is written: a completion waits for the
      // next claim, which writes it first (one round trip); any other outcome is written by the
      // completer, and the queue claims once it settled (a claim now would find its slot still
      // taken, and hold the queue's lock for nothing).
      if (this.completions.length > 0 || (this.mayHaveMore && !this.limitedClaims)) this.scheduleSlotWake();
    },
    write: (outcome) => {
      // NOTE: not while claims back off after a database error (the completer retries on its own),
      // nor once stopping (shutdown drains the completer).
      if (!this.limitedClaims || this.stopped || outcome.state !== 'completed' || this.failures > 0) return undefined;
      return new Promise<WriteResult>((resolve) => this.completions.push({ outcome, resolve }));
    },
    settled: () => {
      this.settling--;
      this.fillSlots();
      if (this.mayHaveMore) this.scheduleSlotWake();
    },
  };

  /** Moves buffered jobs into the slots that are free, at most BUFFER_BURST per event-loop turn. */
  private fillSlots(): void {
    if (this.buffer.size === 0 || this.stopped) return;
    const now = Date.now();
    while (this.freeSlots() > 0 && this.burst < BUFFER_BURST) {
      const next = this.buffer.take(now);
      if (!next) return;
      // NOTE: the burst ends with this turn; the next turn, after I/O (and so other queues) had
      // its share, goes on with the buffer.
      if (this.burst++ === 0) {
        this.burstEnd = setImmediate(() => {
          this.burstEnd = undefined;
          this.burst = 0;
          this.fillSlots();
        });
      }
      this.dispatch(next.entry, next.claimedAt);
    }
  }

  private dispatch(entry: RunningJob, claimedAt: number): void {
    this.active++;
    this.sizer.started();
    this.runner.run(entry, this.hooks, claimedAt);
  }

  /** The oldest buffered job waited `maxWaitMs`: the slots stalled, so let other workers have them. */
  private onStale(): void {
    const count = this.buffer.size;
    this.stalled = true;
    this.ahead = 0;
    this.handBackBuffered();
    this.logger.debug(`Queue "${this.queue}": handed back ${count} buffered job(s) that waited over ${this.settings.claimAhead ? this.settings.claimAhead.maxWaitMs : 0} ms for a slot`);
  }

  /** Hands the completions waiting for a claim to the completer. */
  private flushCompletions(): void {
    if (this.completions.length === 0) return;
    for (const c of this.completions.splice(0)) void this.runner.writeOutcome(c.outcome).then(c.resolve);
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
