import { Logger } from '@nestjs/common';
import type { EntityManager } from 'typeorm';
import type { AttemptOutcome, JobRepository } from '../database/job.repository';
import type { HandlerRegistry } from '../discovery/handler.registry';
import type { JobCompleter } from './job-completer';
import type { RunningJobs } from './running-jobs';
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

const ABORTED = Symbol('aborted');

/** How the executor reports progress to whoever gave it the job (the queue's poller). */
export interface AttemptHooks {
  /** The handler is done (its outcome is handed to the completer): its concurrency slot is free.
   * `retryInMs` is the delay of a retry it scheduled, if any. */
  handlerDone(retryInMs: number | undefined): void;
  /** The outcome is written (or fenced out, or dropped): the attempt is over. */
  settled(): void;
}

/**
 * Runs one attempt: finds the handler, hands it an {@link ActiveJob} with an AbortSignal, enforces
 * the timeout, and turns whatever happens into an outcome for the completer. Nothing a handler does
 * (throw, reject, hang, return junk) escapes as an exception.
 */
export class JobExecutor {
  private readonly logger = new Logger('QueueWorker');

  constructor(
    private readonly registry: HandlerRegistry,
    private readonly repository: JobRepository,
    private readonly completer: JobCompleter,
    private readonly running: RunningJobs,
    private readonly workerId: string,
    private readonly lockDurationMs: number,
  ) {}

  async execute(job: Job, hooks: AttemptHooks): Promise<void> {
    const abort = new AttemptAbort();
    const entry = this.running.add(job, abort, this.lockDurationMs);
    let slotFreed = false;
    try {
      const outcome = await this.attempt(job, abort);
      // NOTE: the slot is freed when the handler is done, not when its outcome is written: the
      // next claim then overlaps the previous batch's write instead of waiting for it. The poller
      // bounds how many written-pending outcomes may pile up.
      slotFreed = true;
      hooks.handlerDone(outcome?.state === 'pending' ? outcome.delayMs : undefined);
      if (outcome) {
        const result = await this.completer.record(outcome);
        if (result === 'fenced' && !(abort.reason instanceof JobCancelledError)) {
          this.logger.warn(new JobLeaseLostError(job.id, job.attempts).message);
        }
      }
    } catch (error) {
      // NOTE: attempt() catches handler errors; anything here is a bug of ours. Log it and let the
      // lease lapse so the job is rescued, rather than crash the worker.
      this.logger.error(`Internal error running job ${job.id}: ${(error as Error)?.stack ?? error}`);
    } finally {
      this.running.delete(entry);
      if (!slotFreed) hooks.handlerDone(undefined);
      hooks.settled();
    }
  }

  /** The outcome to write, or undefined when there is nothing to write. */
  private async attempt(job: Job, abort: AttemptAbort): Promise<AttemptOutcome | undefined> {
    const handler = this.registry.resolve(job.queue, job.name);
    if (!handler) {
      // Retrying cannot help: the code has no handler for this name.
      return this.failure(job, new MissingHandlerError(job.queue, job.name), false);
    }
    let committedInTransaction = false;
    const active = new ActiveJobView(job, abort, async (work) => {
      const value = await this.completeInTransaction(job, abort, work);
      committedInTransaction = true;
      return value;
    });
    const timer = job.timeoutMs != null ? setTimeout(() => abort.abort(new JobTimeoutError(job.timeoutMs!)), job.timeoutMs) : undefined;
    try {
      // NOTE: settles on abort too, so a handler that ignores its signal cannot hold the slot or
      // the outcome hostage; its late result is ignored here and fenced out in the database.
      const value = await new Promise<unknown>((resolve, reject) => {
        abort.onAbort(() => resolve(ABORTED));
        const returned = handler(active);
        if (returned !== null && typeof (returned as PromiseLike<unknown>)?.then === 'function') {
          (returned as PromiseLike<unknown>).then(resolve, reject);
        } else {
          resolve(returned);
        }
      });
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
      return this.failure(job, error, true);
    } finally {
      clearTimeout(timer);
    }
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
    const error = jobErrorJson(serializeJobError(thrown, job.attempts));
    if (!retryable || job.attempts >= maxAttempts) {
      return { id: job.id, claim: job.claims, state: 'failed', result: null, error, delayMs: 0, refund: false };
    }
    const delayMs = backoffDelayMs(job.backoff ?? DEFAULT_BACKOFF, job.attempts);
    return { id: job.id, claim: job.claims, state: 'pending', result: null, error, delayMs, refund: false };
  }

  private fromAbort(job: Job, reason: unknown): AttemptOutcome | undefined {
    if (reason instanceof JobCancelledError || reason instanceof JobLeaseLostError) return undefined;
    if (reason instanceof WorkerShutdownError) {
      return { id: job.id, claim: job.claims, state: 'pending', result: null, error: null, delayMs: 0, refund: true };
    }
    return this.failure(job, reason, true);
  }

  private async completeInTransaction<X>(job: Job, abort: AttemptAbort, work: (manager: EntityManager) => Promise<X>): Promise<X> {
    abort.throwIfAborted();
    return this.repository.dataSource.transaction(async (manager) => {
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
      const written = await this.repository.finish([outcome], this.workerId, manager);
      if (!written.has(job.id)) throw new JobLeaseLostError(job.id, job.attempts);
      return value;
    });
  }
}
