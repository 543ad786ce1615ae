import { Logger } from '@nestjs/common';
import type { EntityManager } from 'typeorm';
import type { AttemptOutcome, JobRepository } from '../database/job.repository';
import type { HandlerRegistry } from '../discovery/handler.registry';
import type { JobCompleter, WriteResult } from './job-completer';
import type { RunningJob, RunningJobs } from './running-jobs';
import type { ActiveJob, Job } from '../interfaces/job.interface';
import { backoffDelayMs } from './retry-policy';
import { AttemptAbort } from './attempt-abort';
import { ActiveJobView } from './active-job.view';
import { JobSnooze } from './job-snooze';
import { jobErrorJson, serializeJobError } from './job-error.serializer';
import { serializeJson } from '../producer/job-data.validator';
import { MissingHandlerError } from '../errors/missing-handler.error';
import { JobTimeoutError } from '../errors/job-timeout.error';
import { JobCancelledError } from '../errors/job-cancelled.error';
import { JobLeaseLostError } from '../errors/job-lease-lost.error';
import { WorkerShutdownError } from '../errors/worker-shutdown.error';
import { DEFAULT_BACKOFF, DEFAULT_MAX_ATTEMPTS } from '../queue.constants';
import { JobLifecycle } from './job-lifecycle';
import { JobActivity } from './job-activity';
import type { QueueTracing } from '../observability/tracing/queue-tracing.service';
import { FlowRepository } from '../database/flow.repository';
import { RateLimitedError } from '../errors/rate-limited.error';
import { LimitsRepository } from '../database/limits.repository';

const ABORTED = Symbol('aborted');
/** How long after its abort a handler still running is reported as ignoring its signal. */
const OVERRUN_WARNING_MS = 1000;
/** Longest wait before a job with an unknown name is offered again. */
const MAX_UNKNOWN_JOB_RETRY_DELAY_MS = 5000;

const noop = () => undefined;

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return value !== null && typeof (value as PromiseLike<unknown>)?.then === 'function';
}

/** How a log line names a job. */
function describeJob(job: Job): string {
  return `Job ${job.id} (queue "${job.queue}", name "${job.name}")`;
}

/**
 * When a job with an unknown name is offered again: soon enough that a worker that knows it takes
 * it quickly, not so soon that the workers that do not know it spin on it (a quarter of the grace,
 * at least 250 ms, at most 5 s).
 */
export function unknownJobRetryDelayMs(graceMs: number): number {
  return Math.max(250, Math.min(MAX_UNKNOWN_JOB_RETRY_DELAY_MS, Math.ceil(graceMs / 4)));
}

/** How the executor reports progress to whoever gave it the job (the queue's poller). */
export interface AttemptHooks {
  /** The handler is done (its outcome is handed to the completer): its concurrency slot is free.
   * `retryInMs` is the delay of a retry it scheduled, if any. */
  handlerDone(retryInMs: number | undefined): void;
  /** The outcome is written (or fenced out, or dropped): the attempt is over. */
  settled(): void;
  /**
   * Takes the outcome to write it itself (a limited queue's poller writes completions with its next
   * claim); undefined: the completer writes it.
   */
  write?(outcome: AttemptOutcome): Promise<WriteResult> | undefined;
}

/**
 * Runs one attempt: finds the handler, hands it an {@link ActiveJob} with an AbortSignal, enforces
 * the timeout, and turns whatever happens into an outcome for the completer. Nothing a handler does
 * (throw, reject, hang, return junk) escapes as an exception.
 */
export class JobExecutor {
  private readonly logger = new Logger('QueueWorker');
  /** `queue` NUL `name` of the unknown job names already logged at warn level by this process. */
  private readonly unknownLogged = new Set<string>();
  /** What `job.getChildren()` reads (one object for every job). */
  private readonly flows: FlowRepository;
  private limitsRepository?: LimitsRepository;

  constructor(
    private readonly registry: HandlerRegistry,
    private readonly repository: JobRepository,
    private readonly completer: JobCompleter,
    private readonly running: RunningJobs,
    private readonly workerId: string,
    private readonly lockDurationMs: number,
    private readonly unknownJobGraceMs: number,
    private readonly lifecycle: JobLifecycle = new JobLifecycle(),
    private readonly activity: JobActivity = new JobActivity(repository, workerId, lifecycle),
    private readonly tracing?: QueueTracing,
  ) {
    this.flows = new FlowRepository(repository);
  }

  /**
   * Runs one claimed attempt. `claimedAt` is when the claim statement was sent: the lease the
   * database granted cannot end before `claimedAt` + the lease length.
   */
  async execute(job: Job, hooks: AttemptHooks, claimedAt = Date.now(), entry = this.admit(job, claimedAt)): Promise<void> {
    const abort = entry.abort;
    try {
      // NOTE: an older attempt of this job still runs here (cancelled and retried, or requeued by
      // our own rescuer while frozen): the database gave us a newer claim, so its lease is surely
      // gone. It is aborted, and this attempt starts only once its handler has returned, so two
      // runs of one job never overlap in this process.
      if (entry.older) await this.supersede(entry.older);
      // NOTE: the start is kept for any listener (an outcome event carries it: its run time); the
      // `active` event itself is built only if someone takes it (the outcome tally does not).
      if (this.lifecycle.active) {
        entry.activeAt = Date.now();
        if (this.lifecycle.hears('active')) this.lifecycle.emit({ type: 'active', job, at: entry.activeAt });
      }
      let outcome = abort.aborted
        ? this.fromAbort(job, abort.reason)
        : await (this.tracing?.enabled ? this.tracing.consume(job, () => this.attempt(job, abort, entry)) : this.attempt(job, abort, entry));
      if (entry.stillRunning) {
        this.watchOverrun(entry);
        if (abort.reason instanceof WorkerShutdownError) {
          // NOTE: handed back (attempt refunded) only once the handler stopped; if shutdown gives
          // up on it first (abandoned), nothing is written and its lease lapses.
          await entry.stillRunning;
          if (entry.abandoned) outcome = undefined;
        }
      }
      const write = outcome ? (hooks.write?.(outcome) ?? this.completer.record(outcome)) : undefined;
      // NOTE: an aborted attempt's outcome may be written at once, but its concurrency slot stays
      // taken until its handler's promise settles: `concurrency` bounds handler code actually
      // running in this process, not attempts with an open outcome.
      if (entry.stillRunning) await entry.stillRunning;
      // NOTE: the slot is freed when the handler is done, not when its outcome is written: the
      // next claim then overlaps the previous batch's write instead of waiting for it. The poller
      // bounds how many written-pending outcomes may pile up.
      entry.handlerDone = true;
      // A retry or a snooze: wake this queue's poller when it is due (a hand-back at shutdown wakes
      // a stopped poller, which does nothing).
      hooks.handlerDone(outcome?.state === 'pending' ? outcome.delayMs : undefined);
      if (write) {
        const result = await write;
        if (result === 'fenced' && !(abort.reason instanceof JobCancelledError)) {
          this.logger.warn(new JobLeaseLostError(job.id, job.attempts).message);
        }
        if (result === 'written' && this.lifecycle.active) this.tellOutcome(job, outcome!, abort.reason, entry.activeAt);
      }
    } catch (error) {
      // NOTE: attempt() catches handler errors; anything here is a bug of ours. Log it and let the
      // lease lapse so the job is rescued, rather than crash the worker.
      this.logger.error(`Internal error running job ${job.id}: ${(error as Error)?.stack ?? error}`);
    } finally {
      this.running.delete(entry);
      if (!entry.handlerDone) hooks.handlerDone(undefined);
      hooks.settled();
    }
  }

  /**
   * Adds a claimed job to the running set before it runs (or while it waits in a claim-ahead
   * buffer): from here on its lease is renewed and a cancellation aborts it.
   */
  admit(job: Job, claimedAt: number): RunningJob {
    return this.running.add(job, new AttemptAbort(), claimedAt + this.lockDurationMs);
  }

  /** Aborts an older attempt of the same job and waits until its handler has returned. */
  private async supersede(older: RunningJob): Promise<void> {
    older.abort.abort(new JobLeaseLostError(older.job.id, older.job.attempts));
    // NOTE: polled (a rare path): the older attempt says within a few microtasks whether its
    // handler still runs (`stillRunning`), unless it is itself waiting for an even older one.
    while (!older.removed && !older.handlerDone && !older.stillRunning) await new Promise<void>((resolve) => setTimeout(resolve, 10));
    await older.stillRunning;
  }

  /** Warns, once per attempt, when a handler still runs a while after its attempt was aborted. */
  private watchOverrun(entry: RunningJob): void {
    const { job, abort } = entry;
    const timer = setTimeout(() => {
      const why = abort.reason instanceof Error ? `${abort.reason.name}: ${abort.reason.message}` : String(abort.reason);
      this.logger.warn(
        `${describeJob(job)} is still running ${OVERRUN_WARNING_MS} ms after its attempt ${job.attempts} was aborted (${why}): ` +
          `its handler ignores job.signal. Its concurrency slot stays taken until it returns.`,
      );
    }, OVERRUN_WARNING_MS);
    timer.unref();
    void entry.stillRunning!.then(() => clearTimeout(timer));
  }

  /** The outcome to write, or undefined when there is nothing to write. */
  private async attempt(job: Job, abort: AttemptAbort, entry: RunningJob): Promise<AttemptOutcome | undefined> {
    const handler = this.registry.resolve(job.queue, job.name);
    if (!handler) {
      // Retrying cannot help: the code has no handler for this name.
      if (this.unknownJobGraceMs === 0) return this.failure(job, new MissingHandlerError(job.queue, job.name), false);
      await this.handBackUnknown(job);
      return undefined;
    }
    let committedInTransaction = false;
    const active = new ActiveJobView(job, abort, async (work) => {
      const value = await this.completeInTransaction(job, abort, entry, work);
      committedInTransaction = true;
      return value;
    }, this.activity, this.flows);
    const timer = job.timeoutMs != null ? setTimeout(() => abort.abort(new JobTimeoutError(job.timeoutMs!)), job.timeoutMs) : undefined;
    let returned: unknown;
    try {
      // NOTE: settles on abort too, so a handler that ignores its signal cannot hold the outcome
      // hostage; its late result is ignored here and fenced out in the database. Its slot is held
      // until it returns (`entry.stillRunning`).
      const value = await new Promise<unknown>((resolve, reject) => {
        abort.onAbort(() => resolve(ABORTED));
        returned = handler(active);
        if (isThenable(returned)) {
          returned.then(resolve, reject);
        } else {
          resolve(returned);
        }
      });
      if (value === ABORTED) this.markStillRunning(entry, returned);
      if (committedInTransaction) return undefined;
      if (value === ABORTED) return this.fromAbort(job, abort.reason);
      if (value instanceof JobSnooze) {
        // Back to pending in delayMs, the attempt refunded, lastError untouched (error null).
        return { id: job.id, claim: job.claims, state: 'pending', result: null, error: null, delayMs: value.delayMs, refund: true };
      }
      return this.success(job, value);
    } catch (error) {
      if (committedInTransaction) return undefined;
      if (abort.aborted) return this.fromAbort(job, abort.reason);
      if (error instanceof RateLimitedError) return this.rateLimited(job, error);
      return this.failure(job, error, true);
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Records that the attempt was aborted while its handler's promise had not settled.
   * NOTE: only on this path is anything allocated for it; a handler that returns (the usual case)
   * costs nothing more.
   */
  private markStillRunning(entry: RunningJob, returned: unknown): void {
    if (isThenable(returned)) entry.stillRunning = Promise.resolve(returned).then(noop, noop);
  }

  /**
   * A job whose name no handler of its queue knows (here): handed back uncounted, for a worker that
   * knows it (a rolling deploy), until it has been unknown for `unknownJobGraceMs`; then failed.
   */
  private async handBackUnknown(job: Job): Promise<void> {
    const error = new MissingHandlerError(job.queue, job.name);
    // NOTE: jittered: due again at a time set by this worker's own poll, the job would come due
    // just before this worker's next poll, and this worker would win it back nearly every time.
    const retryInMs = Math.round(unknownJobRetryDelayMs(this.unknownJobGraceMs) * (0.75 + Math.random() / 2));
    let state: 'pending' | 'failed' | null;
    try {
      state = await this.repository.handBackUnknown(
        { id: job.id, claim: job.claims },
        this.workerId,
        this.unknownJobGraceMs,
        retryInMs,
        jobErrorJson(serializeJobError(error, job.attempts)),
      );
    } catch (failure) {
      this.logger.warn(`Could not hand back ${describeJob(job)} (no handler here): ${(failure as Error)?.message ?? failure}; its lease will lapse and it will be rescued`);
      return;
    }
    if (state === 'failed') {
      this.logger.error(`${describeJob(job)} failed: no handler for its name for ${this.unknownJobGraceMs} ms (${error.message})`);
    } else if (state === 'pending') {
      const key = `${job.queue}\u0000${job.name}`;
      const first = !this.unknownLogged.has(key);
      this.unknownLogged.add(key);
      const message = `${describeJob(job)} has no handler in this worker; handed back (attempt not counted) for a worker that knows it, again in ${retryInMs} ms; it fails once unknown for ${this.unknownJobGraceMs} ms`;
      if (first) this.logger.warn(message);
      else this.logger.debug(message);
    }
  }

  /**
   * A handler's RateLimitedError: its queue's (or group's) block is written first, so no node
   * starts another job of it before `retryAfterMs`; then the job goes back to pending, the attempt
   * refunded. If the block cannot be written, only this job waits (and the failure is logged).
   */
  private async rateLimited(job: Job, error: RateLimitedError): Promise<AttemptOutcome> {
    const { retryAfterMs: delayMs, scope } = error;
    this.limitsRepository ??= new LimitsRepository(this.repository);
    let rateLimited: AttemptOutcome['rateLimited'] = 'delayed';
    try {
      if (scope === 'queue') {
        await this.limitsRepository.blockQueue(job.queue, delayMs);
        rateLimited = 'keepPlace';
      } else if (await this.limitsRepository.blockGroup(job.id, delayMs)) {
        rateLimited = 'keepPlace';
      }
    } catch (failure) {
      this.logger.warn(`${describeJob(job)} is rate limited, but its ${scope}'s block could not be written (${(failure as Error)?.message ?? failure}): only this job waits ${delayMs} ms`);
    }
    this.logger.debug(`${describeJob(job)} is rate limited: no job of its ${scope} starts for ${delayMs} ms; handed back (attempt not counted)`);
    return { id: job.id, claim: job.claims, state: 'pending', result: null, error: null, delayMs, refund: true, rateLimited };
  }

  /** Tells the lifecycle hub what the written outcome was. */
  private tellOutcome(job: Job, outcome: AttemptOutcome, abortReason: unknown, activeAt: number | undefined): void {
    const at = Date.now();
    if (outcome.state === 'completed') this.lifecycle.emit({ type: 'completed', job, at, result: outcome.result ?? 'null', activeAt });
    else if (outcome.state === 'failed') this.lifecycle.emit({ type: 'failed', job, at, error: outcome.error ?? 'null', activeAt });
    else if (outcome.refund) {
      const reason = abortReason instanceof WorkerShutdownError ? 'shutdown' : outcome.rateLimited ? 'rate-limited' : 'snooze';
      this.lifecycle.emit({ type: 'requeued', job, at, delayMs: outcome.delayMs, reason });
    } else this.lifecycle.emit({ type: 'retrying', job, at, error: outcome.error ?? 'null', delayMs: outcome.delayMs, activeAt });
  }

  private success(job: Job, value: unknown): AttemptOutcome {
    // NOTE: most handlers return nothing: no check or serialisation needed for that.
    if (value === undefined || value === null) {
      return { id: job.id, claim: job.claims, state: 'completed', result: 'null', error: null, delayMs: 0, refund: false };
    }
    let result: string;
    try {
      result = serializeJson(value, 'result');
    } catch (error) {
      return this.failure(job, error, true);
    }
    return { id: job.id, claim: job.claims, state: 'completed', result, error: null, delayMs: 0, refund: false };
  }

  private failure(job: Job, thrown: unknown, retryable: boolean): AttemptOutcome {
    const maxAttempts = job.maxAttempts ?? DEFAULT_MAX_ATTEMPTS;
    const serialized = serializeJobError(thrown, job.attempts);
    const error = jobErrorJson(serialized);
    const attempt = `attempt ${job.attempts}/${maxAttempts}`;
    if (!retryable || job.attempts >= maxAttempts) {
      this.logger.error(`${describeJob(job)} failed on ${attempt}${retryable ? '' : ' (not retryable)'}: ${serialized.message}`);
      return { id: job.id, claim: job.claims, state: 'failed', result: null, error, delayMs: 0, refund: false };
    }
    const delayMs = backoffDelayMs(job.backoff ?? DEFAULT_BACKOFF, job.attempts);
    this.logger.warn(`${describeJob(job)} failed ${attempt}: ${serialized.message}; retrying in ${delayMs} ms`);
    return { id: job.id, claim: job.claims, state: 'pending', result: null, error, delayMs, refund: false };
  }

  private fromAbort(job: Job, reason: unknown): AttemptOutcome | undefined {
    if (reason instanceof JobCancelledError || reason instanceof JobLeaseLostError) return undefined;
    if (reason instanceof WorkerShutdownError) {
      return { id: job.id, claim: job.claims, state: 'pending', result: null, error: null, delayMs: 0, refund: true };
    }
    return this.failure(job, reason, true);
  }

  private async completeInTransaction<X>(job: Job, abort: AttemptAbort, entry: RunningJob, work: (manager: EntityManager) => Promise<X>): Promise<X> {
    abort.throwIfAborted();
    let written = 'null';
    const committed = await this.repository.dataSource.transaction(async (manager) => {
      const value = await work(manager);
      const result = serializeJson(value === undefined ? null : value, 'result');
      abort.throwIfAborted();
      const outcome: AttemptOutcome = {
        id: job.id,
        claim: job.claims,
        state: 'completed',
        result,
        error: null,
        delayMs: 0,
        refund: false,
      };
      const fenced = await this.repository.finish([outcome], this.workerId, manager);
      if (!fenced.has(job.id)) throw new JobLeaseLostError(job.id, job.attempts);
      written = result;
      return value;
    });
    // NOTE: told only once the transaction committed: the completion is durable from here on.
    if (this.lifecycle.active) this.lifecycle.emit({ type: 'completed', job, at: Date.now(), result: written, activeAt: entry.activeAt });
    return committed;
  }
}
