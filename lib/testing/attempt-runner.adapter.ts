import type { JobRepository } from '../database/job.repository';
import type { HandlerRegistry, JobHandler } from '../discovery/handler.registry';
import type { Job } from '../interfaces/job.interface';
import { JobCompleter } from '../worker/job-completer';
import { JobExecutor } from '../worker/job-executor';
import { RunningJobs } from '../worker/running-jobs';

/** What the handler itself did in one attempt (its raw value or the error it threw). */
export interface HandlerOutcome {
  ran: boolean;
  threw: boolean;
  error?: unknown;
  value?: unknown;
}

/**
 * Runs claimed jobs with the worker's own JobExecutor and JobCompleter, in this process: same
 * handler lookup, ActiveJob, timeout, retry/backoff decision and fenced outcome write as a worker.
 *
 * NOTE: the only place the testing helpers touch the worker's internals (the executor's
 * constructor and hooks): adapt this file when they change.
 */
export class AttemptRunner {
  private readonly completer: JobCompleter;
  private readonly executor: JobExecutor;
  private readonly outcomes = new Map<string, HandlerOutcome>();

  constructor(registry: HandlerRegistry, repository: JobRepository, workerId: string, lockDurationMs: number) {
    this.completer = new JobCompleter(repository, workerId);
    // NOTE: the handlers are wrapped to see what they return or throw: run() hands the very error
    // back to the test, which the stored lastError (a serialised copy) is not.
    const watched = { resolve: (queue: string, name: string) => this.watch(registry.resolve(queue, name)) } as unknown as HandlerRegistry;
    // NOTE: an unknown job name fails at once here (grace 0): a test wants to see it, not wait for
    // another worker that knows the name.
    this.executor = new JobExecutor(watched, repository, this.completer, new RunningJobs(), workerId, lockDurationMs, 0);
  }

  /** Runs one attempt; resolves once its outcome is written. Never rejects. */
  async run(job: Job): Promise<HandlerOutcome> {
    this.outcomes.set(job.id, { ran: false, threw: false });
    await this.executor.execute(job, { handlerDone: () => undefined, settled: () => undefined });
    const outcome = this.outcomes.get(job.id)!;
    this.outcomes.delete(job.id);
    return outcome;
  }

  private watch(handler: JobHandler | undefined): JobHandler | undefined {
    if (!handler) return undefined;
    return (active) => {
      const outcome = this.outcomes.get(active.id) ?? { ran: false, threw: false };
      outcome.ran = true;
      const record = (value: unknown) => ((outcome.value = value), value);
      const fail = (error: unknown) => {
        outcome.threw = true;
        outcome.error = error;
        throw error;
      };
      try {
        const returned = handler(active);
        if (returned !== null && typeof (returned as PromiseLike<unknown>)?.then === 'function') {
          return Promise.resolve(returned).then(record, fail);
        }
        return record(returned);
      } catch (error) {
        return fail(error);
      }
    };
  }
}
