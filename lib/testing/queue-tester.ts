import type { INestApplicationContext } from '@nestjs/common';
import { hostname } from 'node:os';
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { QueueDatabase } from '../database/queue-database';
import type { JobRepository } from '../database/job.repository';
import { HandlerRegistry } from '../discovery/handler.registry';
import { QueueService } from '../producer/queue.service';
import { assertInteger } from '../producer/job-options.validator';
import { claimDefaultsOf } from '../worker/claim-defaults';
import { RESOLVED_QUEUE_OPTIONS, MAX_INT32 } from '../queue.constants';
import type { ResolvedQueueOptions } from '../queue-options.resolver';
import { JobState, type Job } from '../interfaces/job.interface';
import type { JobOptions } from '../interfaces/job-options.interface';
import { InvalidJobOptionError } from '../errors/invalid-job-option.error';
import { MissingHandlerError } from '../errors/missing-handler.error';
import { JobExpectationError } from '../errors/job-expectation.error';
import { DrainTimeoutError } from '../errors/drain-timeout.error';
import { JobRunFailedError } from '../errors/job-run-failed.error';
import { AttemptRunner } from './attempt-runner.adapter';
import { describeJobs, matchesFilter, type JobFilter } from './job-filter';

/** What `drain()` ran: attempts that completed, failed for good, or failed and were scheduled again. */
export interface DrainSummary {
  completed: number;
  failed: number;
  retried: number;
}

export interface DrainOptions {
  /** Stop after this many attempts (default 1,000): a job that keeps enqueueing jobs cannot loop forever. */
  maxJobs?: number;
  /** Throw `DrainTimeoutError` when not done by then (default 10,000 ms). */
  timeoutMs?: number;
}

/** Leases of the tester's attempts: long, since no lease keeper renews them here. */
const TESTER_LEASE_MS = 10 * 60_000;
const BATCH = 10;
const MAX_LISTED = 1000;

/**
 * Test helpers over a booted Nest app that imports `QueueModule`; see {@link createQueueTester}.
 * Holds no timer and no connection of its own: it uses the app's DataSource and runs jobs with
 * the worker's executor in this process, only while one of its methods runs.
 */
export class QueueTester {
  private readonly queue: QueueService;
  private readonly database: QueueDatabase;
  private readonly registry: HandlerRegistry;
  private readonly options: ResolvedQueueOptions;
  private readonly workerId = `tester:${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
  private runner?: AttemptRunner;

  constructor(app: INestApplicationContext) {
    this.queue = app.get(QueueService, { strict: false });
    this.database = app.get(QueueDatabase, { strict: false });
    this.registry = app.get(HandlerRegistry, { strict: false });
    this.options = app.get<ResolvedQueueOptions>(RESOLVED_QUEUE_OPTIONS, { strict: false });
  }

  /** The jobs of this app's table that match, oldest first (at most 1,000). */
  async enqueued<T = unknown, R = unknown>(filter: JobFilter = {}): Promise<Job<T, R>[]> {
    const jobs = await (await this.repository()).list<T, R>({ queue: filter.queue, name: filter.name, limit: MAX_LISTED, newestFirst: false });
    return jobs.filter((job) => matchesFilter(job, filter));
  }

  /**
   * The jobs that match; throws {@link JobExpectationError} when there is none, listing the jobs
   * of that queue (or all) so the test's output shows what was enqueued instead.
   */
  async expectEnqueued<T = unknown, R = unknown>(filter: JobFilter): Promise<Job<T, R>[]> {
    const matching = await this.enqueued<T, R>(filter);
    if (matching.length > 0) return matching;
    const present = await this.enqueued({ queue: filter.queue });
    throw new JobExpectationError(
      `Expected a job matching ${JSON.stringify(filter)}; ${filter.queue ? `queue "${filter.queue}" has` : 'there are'} ${present.length}:\n${describeJobs(present)}`,
      filter,
    );
  }

  /**
   * Runs every due job of `queue` (or of every queue this app has a processor for) in this process,
   * with the real handlers, until none is due: also jobs the handlers enqueue, and retries whose
   * backoff is already due (a retry due later is left pending and counted in `retried`). With a
   * running worker it also waits until the worker's active jobs of those queues are done.
   */
  async drain(queue?: string, options: DrainOptions = {}): Promise<DrainSummary> {
    const maxJobs = options.maxJobs ?? 1000;
    const timeoutMs = options.timeoutMs ?? 10_000;
    assertInteger('maxJobs', maxJobs, 1, MAX_INT32);
    assertInteger('timeoutMs', timeoutMs, 1, MAX_INT32);
    const queues = queue === undefined ? this.registry.getQueues().map((q) => q.queue) : [this.assertProcessed(queue)];
    const summary: DrainSummary = { completed: 0, failed: 0, retried: 0 };
    const deadline = Date.now() + timeoutMs;
    const repository = await this.repository();
    let ran = 0;
    for (;;) {
      let claimed = 0;
      for (const name of queues) {
        if (ran >= maxJobs) return summary;
        const jobs = await this.claim(repository, name, Math.min(BATCH, maxJobs - ran));
        claimed += jobs.length;
        for (const job of jobs) {
          await this.attemptRunner(repository).run(job);
          ran++;
          count(summary, (await repository.findById(job.id))?.state);
        }
      }
      if (Date.now() > deadline) throw new DrainTimeoutError(queues, timeoutMs, summary);
      if (claimed > 0) continue;
      // NOTE: nothing due here; a running worker may still be running jobs, which may enqueue more.
      const active = await Promise.all(queues.map(async (name) => (await repository.countByState(name)).active));
      if (active.every((n) => n === 0)) return summary;
      await sleep(20);
    }
  }

  /**
   * Enqueues one job and runs it as the worker would (one attempt, `maxAttempts: 1`); returns what
   * the handler returned, as stored (JSON), or throws what it threw.
   */
  async run<R = unknown>(queue: string, name: string, data: unknown, options: Omit<JobOptions, 'manager'> = {}): Promise<R> {
    if (!this.registry.resolve(queue, name)) throw new MissingHandlerError(queue, name);
    // NOTE: run() runs this one job now; one that waits for others would only wait (use drain()).
    if (typeof options === 'object' && options !== null && 'dependsOn' in options) {
      throw new InvalidJobOptionError('dependsOn', options.dependsOn, 'no dependsOn in run(): add the job and its dependencies, then drain()');
    }
    const repository = await this.repository();
    // NOTE: top priority so the claim below takes this job first.
    const added = await this.queue.add(queue, name, data, { ...options, maxAttempts: 1, priority: MAX_INT32 });
    for (;;) {
      const [job] = await this.claim(repository, queue, 1);
      if (!job) break; // a running worker took it
      const outcome = await this.attemptRunner(repository).run(job);
      if (job.id !== added.id) continue; // another top-priority job: run, then claim again
      if (outcome.threw) throw outcome.error;
      break;
    }
    const job = await this.waitUntilFinished(repository, added.id);
    if (job.state === JobState.Completed) return job.result as R;
    throw new JobRunFailedError(job.id, job.lastError);
  }

  /** Deletes every job of this app's job table (between tests). Returns how many. */
  async clear(): Promise<number> {
    return (await this.repository()).deleteAll();
  }

  private repository(): Promise<JobRepository> {
    return this.database.getRepository();
  }

  private attemptRunner(repository: JobRepository): AttemptRunner {
    this.runner ??= new AttemptRunner(this.registry, repository, this.workerId, TESTER_LEASE_MS);
    return this.runner;
  }

  private async claim(repository: JobRepository, queue: string, limit: number): Promise<Job[]> {
    const registered = this.registry.getQueues().find((q) => q.queue === queue)!;
    // NOTE: the limited claim, which claims queues with or without limits (the plain claim takes
    // nothing from a queue with limits): tests run such queues' jobs as a worker would.
    return (await repository.claimLimited(queue, limit, this.workerId, TESTER_LEASE_MS, claimDefaultsOf(this.options, registered))).jobs;
  }

  private assertProcessed(queue: string): string {
    const known = this.registry.getQueues().map((q) => q.queue);
    if (!known.includes(queue)) {
      throw new InvalidJobOptionError('queue', queue, `a queue with a @Processor in this app (${known.map((q) => `"${q}"`).join(', ') || 'none'})`);
    }
    return queue;
  }

  private async waitUntilFinished(repository: JobRepository, id: string): Promise<Job> {
    for (;;) {
      const job = await repository.findById(id);
      if (!job) throw new JobRunFailedError(id, null);
      if (job.state !== JobState.Pending && job.state !== JobState.Active) return job;
      await sleep(20);
    }
  }
}

function count(summary: DrainSummary, state: JobState | undefined): void {
  if (state === JobState.Completed) summary.completed++;
  else if (state === JobState.Failed) summary.failed++;
  else if (state === JobState.Pending) summary.retried++;
}

/**
 * Test helpers for an app that imports `QueueModule`: assert what was enqueued, run jobs with
 * their real handlers in the test's process, and clean up between tests.
 *
 * ```ts
 * const app = await moduleRef.createNestApplication().init();
 * const tester = createQueueTester(app);
 * await tester.expectEnqueued({ queue: 'email', name: 'welcome', data: { to: 'ada@example.com' } });
 * expect(await tester.drain('email')).toMatchObject({ completed: 1, failed: 0 });
 * ```
 *
 * Works with `worker: false` (recommended in tests: nothing runs until the test says so) and with
 * a running worker. Leaves no timer or connection behind: `app.close()` is all a test needs.
 */
export function createQueueTester(app: INestApplicationContext): QueueTester {
  return new QueueTester(app);
}
