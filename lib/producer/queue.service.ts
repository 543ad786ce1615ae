import { Inject, Injectable } from '@nestjs/common';
import { QueueDatabase } from '../database/queue-database';
import { MetricsRepository } from '../database/metrics.repository';
import type { NewJobRow } from '../database/job.repository';
import { QueueWakeups } from '../worker/queue-wakeups';
import { InsertBatcher, chunkRows } from './insert-batcher';
import { serializeJson } from './job-data.validator';
import { assertInteger, assertKnownKeys, assertName, validateJobOptions } from './job-options.validator';
import { KNOWN_OPTIONS } from './known-options';
import { isJobId } from './job-id';
import { JobAdmin } from './job-admin.service';
import { InvalidJobOptionError } from '../errors/invalid-job-option.error';
import { JobNotFoundError } from '../errors/job-not-found.error';
import { InvalidJobStateError } from '../errors/invalid-job-state.error';
import { COPY_MIN_ROWS, RESOLVED_QUEUE_OPTIONS } from '../queue.constants';
import { JobState, type Job, type JobChild, type JobCounts, type JobLogEntry } from '../interfaces/job.interface';
import { JobEventsService } from '../events/job-events.service';
import type { BulkJob, JobOptions, UniqueOptions } from '../interfaces/job-options.interface';
import type { ResolvedQueueOptions } from '../queue-options.resolver';
import type { QueueInfo } from '../interfaces/queue-info.interface';
import type { QueueLimitsUpdate } from '../interfaces/processor-options.interface';
import { validateLimitOptions } from './limit-options.validator';
import { ScheduleService } from './schedule.service';
import type { ScheduleInfo, ScheduleSpec } from '../interfaces/schedule.interface';
import { QueueObservability } from '../observability/queue-observability.service';
import { QueueTracing } from '../observability/tracing/queue-tracing.service';
import type { QueueStatsFilter, QueueStatsRow, WorkerInfo } from '../interfaces/observability.interface';

import type { FlowJob } from '../interfaces/job-options.interface';
import { JobLifecycle } from '../worker/job-lifecycle';
import { FlowProducer, type AddFlowOptions, type AddedFlow } from './flow-producer';
import { JobDependencyError } from '../errors/job-dependency.error';
import type { BulkActionOptions, JobPage, JobSelection, JobUpdate, ListJobsOptions } from '../interfaces/job-admin.interface';

/** `waitForJob()` gives up after this long unless told otherwise. */
const DEFAULT_WAIT_TIMEOUT_MS = 30_000;

/**
 * Enqueues and inspects jobs. Inject it anywhere once `QueueModule.forRoot()` is imported.
 * Every method validates its input first and throws a typed error (`InvalidJobDataError`,
 * `InvalidJobOptionError`, ...) before anything reaches the database.
 */
@Injectable()
export class QueueService {
  private readonly inserter = new InsertBatcher(() => this.database.getRepository());

  constructor(
    @Inject(RESOLVED_QUEUE_OPTIONS) private readonly options: ResolvedQueueOptions,
    private readonly database: QueueDatabase,
    private readonly wakeups: QueueWakeups,
    private readonly jobEvents: JobEventsService,
    private readonly schedules: ScheduleService,
    private readonly observability: QueueObservability,
    private readonly tracing: QueueTracing,
    private readonly admin: JobAdmin,
    lifecycle: JobLifecycle,
  ) {
    this.flows = new FlowProducer(database, wakeups, lifecycle, (queue, name, data, options, dataPath) => this.toRow(queue, name, data, options, dataPath));
  }

  /** Flows and dependencies (`addFlow`, `dependsOn`). */
  private readonly flows: FlowProducer;

  /**
   * Adds a job to `queue`, to be handled by the `@Handle(name)` of that queue's processor.
   * With `options.manager`, the job is inserted in that transaction: it exists only if the
   * transaction commits. With `options.unique`, a job of the queue that holds the key is returned
   * instead (`duplicate: true`), or replaced (debounce): see {@link UniqueOptions}.
   *
   * @throws InvalidJobDataError when `data` cannot survive a JSON round trip
   * @throws InvalidJobOptionError when a name or option is not valid
   * @throws QueueUnavailableError when the database cannot be reached
   */
  add<T = unknown>(queue: string, name: string, data: T, options: JobOptions = {}): Promise<Job<T>> {
    // NOTE: not async itself, so an untraced add() costs no promise more than before.
    if (this.tracing.enabled) return this.tracing.produce('add', typeof queue === 'string' ? queue : undefined, 1, (trace) => this.addOne(queue, name, data, options, trace));
    return this.addOne(queue, name, data, options, undefined);
  }

  private async addOne<T>(queue: string, name: string, data: T, options: JobOptions, traceContext: string | undefined): Promise<Job<T>> {
    const row = this.toRow(queue, name, data, options, 'data');
    if (traceContext !== undefined) row.traceContext = traceContext;
    if (options.dependsOn !== undefined) return this.flows.addDependent<T>(row, options.dependsOn, options.onChildFailure ?? 'fail', options.manager);
    if (row.unique) {
      // NOTE: not through the group commit: each unique add() needs its own answer (inserted, or
      // which job holds the key), which one statement per add gives plainly.
      const job = await (await this.database.getRepository()).insertUnique(row, options.manager);
      if (!options.manager) this.wakeups.wake(queue, this.dueInMs(job));
      return job as Job<T>;
    }
    if (options.manager) {
      const [job] = await (await this.database.getRepository()).insert([row], options.manager);
      return job as Job<T>;
    }
    const job = await this.inserter.insert(row);
    this.wakeups.wake(queue, this.dueInMs(job));
    return job as Job<T>;
  }

  /**
   * Adds many jobs; returns them in input order. Every job is checked before any is stored, and
   * either all are stored or none:
   * - without delays (`runAt` is fine) and from 64 jobs up: by COPY, in one transaction whatever
   *   the size. Each job's data is validated and serialised just before it is
   *   sent, while the database inserts the previous ones; a bad one aborts the COPY.
   * - otherwise: by statements of up to 5,000 jobs (and 32 MiB of data) each, in one transaction.
   * - when any job has a unique key, by statements too: a key appears once (the first job with it,
   *   or the last with `replace`); the other jobs with that key, and those whose key a job in the
   *   table holds, are returned as that holder (`duplicate: true`).
   *
   * @throws InvalidJobDataError, InvalidJobOptionError naming the first bad job (`jobs[i]…`)
   * @throws QueueUnavailableError when the database cannot be reached
   */
  addBulk<T = unknown>(jobs: BulkJob<T>[]): Promise<Job<T>[]> {
    if (this.tracing.enabled && Array.isArray(jobs)) {
      const queues = new Set(jobs.map((j) => (j as Partial<BulkJob>)?.queue));
      const queue = queues.size === 1 ? [...queues][0] : undefined;
      return this.tracing.produce('addBulk', typeof queue === 'string' ? queue : undefined, jobs.length, (trace) => this.addMany(jobs, trace));
    }
    return this.addMany(jobs, undefined);
  }

  private async addMany<T>(jobs: BulkJob<T>[], traceContext: string | undefined): Promise<Job<T>[]> {
    if (!Array.isArray(jobs)) throw new InvalidJobOptionError('jobs', jobs, 'an array of { queue, name, data, options? }');
    // Everything but the data first: cheap, and it decides how the jobs are inserted.
    const soonest = new Map<string, Date | null>();
    let delayed = false;
    let unique = false;
    let grouped = false;
    let defaultsOnly = (this.options.defaultJobOptions.priority ?? 0) === 0;
    const names = new Set<string>();
    jobs.forEach((job, i) => {
      if (typeof job !== 'object' || job === null) throw new InvalidJobOptionError(`jobs[${i}]`, job, 'an object { queue, name, data, options? }');
      assertKnownKeys(job, KNOWN_OPTIONS.bulkJob, `jobs[${i}].`);
      const options = job.options ?? {};
      if (typeof options === 'object' && options !== null && 'manager' in options) {
        throw new InvalidJobOptionError(`jobs[${i}].options.manager`, '[EntityManager]', 'no manager: addBulk runs outside user transactions');
      }
      // NOTE: bulk inputs repeat a few names many times; each distinct one is checked once.
      if (!names.has(job.queue)) assertName('queue', job.queue);
      if (!names.has(job.name)) assertName('name', job.name);
      names.add(job.queue).add(job.name);
      validateJobOptions(options);
      if (options.dependsOn !== undefined) throw new InvalidJobOptionError(`jobs[${i}].options.dependsOn`, options.dependsOn, 'no dependsOn in addBulk: add() such jobs one by one, or use addFlow()');
      if (options.delayMs !== undefined && options.delayMs > 0) delayed = true;
      if (options.unique !== undefined) unique = true;
      if (options.group !== undefined) grouped = true;
      defaultsOnly &&=
        (options.priority ?? 0) === 0 && options.runAt === undefined && options.maxAttempts === undefined && options.backoff === undefined && options.timeoutMs === undefined;
      const runAt = options.runAt ?? null;
      const known = soonest.get(job.queue);
      if (known === undefined || (known !== null && (runAt === null || runAt < known))) soonest.set(job.queue, runAt);
    });
    const toRow = (i: number) => {
      const job = jobs[i];
      const row = this.toRow(job.queue, job.name, job.data, job.options ?? {}, `jobs[${i}].data`, true);
      if (traceContext !== undefined) row.traceContext = traceContext;
      return row;
    };
    const repository = await this.database.getRepository();
    let added: Job[];
    if (unique) {
      // NOTE: COPY cannot skip a row whose key is held (no ON CONFLICT): statements, in one transaction.
      added = await repository.insertWithUnique(jobs.map((_, i) => toRow(i)), (rows) => [...chunkRows(rows, (row) => row.data)]);
    } else if (!delayed && jobs.length >= COPY_MIN_ROWS && traceContext === undefined) {
      // NOTE: a traced bulk goes by statements, which carry the trace column; the COPY does not.
      added = await repository.insertByCopy({ count: jobs.length, soonest, defaultsOnly, withGroup: grouped, row: toRow });
    } else {
      added = await repository.insertInChunks([...chunkRows(jobs.map((_, i) => toRow(i)), (row) => row.data)]);
    }
    const due = new Map<string, number>();
    for (const job of added) due.set(job.queue, Math.min(due.get(job.queue) ?? Infinity, this.dueInMs(job)));
    due.forEach((inMs, queue) => this.wakeups.wake(queue, inMs));
    return added as Job<T>[];
  }

  /**
   * Adds a flow: a job that runs only after all its `children` completed, each child itself a flow
   * (any depth). The whole tree is validated first and inserted atomically (one statement): every
   * job or none. Jobs with children start `blocked`, leaves `pending`. With `onChildFailure: 'fail'`
   * (default) a child that fails for good or is cancelled fails its parent at once, with an error
   * naming it; with `'continue'` the parent runs anyway once every child is finished, and reads
   * the outcomes with `job.getChildren()`. `cancel()` of a flow's job cancels its unfinished
   * descendants. With `options.manager`, the flow is inserted in that transaction: it exists only
   * if the transaction commits. Returns the root job, with `children` as inserted. See docs/flows.md.
   *
   * @example
   * ```ts
   * await queue.addFlow({ queue: 'video', name: 'publish', data: { videoId }, children: [
   *   { queue: 'video', name: 'transcode', data: { videoId, res: 720 } },
   *   { queue: 'media', name: 'thumbnail', data: { videoId } },
   * ] });
   * ```
   * @throws InvalidJobDataError, InvalidJobOptionError naming the first bad job (`flow.children[1]…`)
   * @throws QueueUnavailableError when the database cannot be reached
   */
  async addFlow<T = unknown>(flow: FlowJob<T>, options: AddFlowOptions = {}): Promise<AddedFlow<T>> {
    return this.flows.addFlow(flow, options);
  }

  /**
   * The children (`addFlow`) or dependencies (`dependsOn`) of a job, in id order, as they are now;
   * empty for a job that waits for nothing (or does not exist). What the dashboard's job page lists.
   *
   * @throws InvalidJobOptionError for a bad id
   */
  async getChildren(id: string): Promise<JobChild[]> {
    this.assertId(id);
    return (await this.database.getFlows()).children(id);
  }

  /** The job with this id, or null. */
  async getJob<T = unknown, R = unknown>(id: string): Promise<Job<T, R> | null> {
    this.assertId(id);
    return (await this.database.getRepository()).findById<T, R>(id);
  }

  /**
   * Cancels a pending, active or blocked job. An active job's handler is aborted (`job.signal`) on
   * whichever process runs it, and its outcome is discarded. Cancelling a cancelled job is a no-op.
   * The unfinished descendants of a flow's job (`addFlow`) are cancelled with it (not the jobs a
   * `dependsOn` named: other jobs may need them).
   *
   * @throws JobNotFoundError, InvalidJobStateError (completed or failed jobs cannot be cancelled)
   */
  async cancel(id: string): Promise<Job> {
    this.assertId(id);
    const repository = await this.database.getRepository();
    const { job: cancelled, descendants, flowEvents } = await repository.cancel(id, this.flows.listened);
    this.flows.tell(flowEvents);
    if (cancelled) {
      const { previousState: _, ...job } = cancelled;
      this.jobEvents.cancelled(job);
      // NOTE: a flow's unfinished descendants were cancelled in the same statement: each is told too.
      for (const descendant of descendants) this.jobEvents.cancelled(descendant);
      return job;
    }
    const job = await repository.findById(id);
    if (!job) throw new JobNotFoundError(id);
    if (job.state === JobState.Cancelled) return job;
    throw new InvalidJobStateError(id, 'cancel', job.state, [JobState.Pending, JobState.Active, JobState.Blocked]);
  }

  /**
   * Puts a failed or cancelled job back to pending, due now, with a fresh attempt budget
   * (`attempts` back to 0; `lastError` is kept for reference). A job still waiting for children or
   * dependencies goes back to `blocked`; a job that failed because a dependency failed is put back
   * to `blocked` by retrying that dependency.
   *
   * @throws JobNotFoundError, InvalidJobStateError
   * @throws JobDependencyError when a dependency of the job failed for good (retry that one instead)
   */
  async retry(id: string): Promise<Job> {
    this.assertId(id);
    return this.retryOnce(id, true);
  }

  private async retryOnce(id: string, again: boolean): Promise<Job> {
    const repository = await this.database.getRepository();
    const { job: revived, flowEvents } = await repository.retry(id, this.flows.listened);
    this.flows.tell(flowEvents);
    if (revived) {
      this.wakeups.wake(revived.queue);
      return revived;
    }
    const job = await repository.findById(id);
    if (!job) throw new JobNotFoundError(id);
    if (job.state === JobState.Failed || job.state === JobState.Cancelled) {
      // NOTE: the retry statement refuses only a job with a failed or cancelled dependency.
      const failed = (await (await this.database.getFlows()).children(id)).filter((c) => c.state === JobState.Failed || c.state === JobState.Cancelled);
      if (failed.length > 0 || !again) throw new JobDependencyError('dependency-failed', id, failed.map((c) => c.id));
      // That dependency was retried meanwhile: once more.
      return this.retryOnce(id, false);
    }
    throw new InvalidJobStateError(id, 'retry', job.state, [JobState.Failed, JobState.Cancelled]);
  }

  /**
   * Pauses a queue on every node: from when this resolves, no worker of any process starts a job
   * of it (the claim itself checks the flag); running jobs finish, `add()` still works, the rescuer
   * and retention go on. The flag is stored, so it survives restarts. Pausing a paused queue is a
   * no-op.
   *
   * @throws InvalidJobOptionError for an invalid queue name
   */
  async pause(queue: string): Promise<QueueInfo> {
    assertName('queue', queue);
    const paused = await (await this.database.getRegistry()).pause(queue);
    this.wakeups.paused(queue);
    return paused;
  }

  /** Resumes a paused queue and wakes its workers at once. Resuming a queue that is not paused is a no-op. */
  async resume(queue: string): Promise<QueueInfo | null> {
    assertName('queue', queue);
    const resumed = await (await this.database.getRegistry()).resume(queue);
    this.wakeups.wake(queue);
    return resumed;
  }

  /**
   * Every queue the table knows (with a processor somewhere, paused, or with jobs), with its pause
   * flag and its job counts per state as last counted (at most 2 s old when it can be helped: see
   * {@link QueueInfo.counts}), and its limits: each effective one with where it comes from
   * (`'runtime'` override, `'code'` declaration, `'none'`), and the declared and override values.
   */
  async getQueues(): Promise<QueueInfo[]> {
    return (await this.database.getRegistry()).list();
  }

  /**
   * Per queue with due pending jobs, how long (ms) its oldest due pending job has waited (a job
   * delayed to later is not due). One loose index scan of the claim index (queues × priorities in
   * use, not the number of pending jobs), what the metrics gauge and the dashboard read. A queue
   * with no due job is not listed.
   */
  async getPendingAges(): Promise<Record<string, number>> {
    return Object.fromEntries(await new MetricsRepository(await this.database.getRepository()).oldestDueAges());
  }

  /**
   * Changes a queue's limits at runtime, on every node: a value sets that limit's override, which
   * wins over the processors' declaration in code until it is removed; `null` removes it (the
   * declared value applies again); a key left out is left as it is. Works from any process (also
   * `worker: false`), creates the queue's registry row if it has none, and returns the queue as it
   * is now. See docs/limits-and-groups.md.
   *
   * @example
   * ```ts
   * await queue.updateQueue('payments', { globalConcurrency: 10, rateLimit: { max: 20, perMs: 1000 } });
   * await queue.updateQueue('payments', { globalConcurrency: null }); // back to the code's value
   * ```
   * @throws InvalidJobOptionError naming the bad option (unknown key, not a positive integer, a bad rate limit)
   */
  async updateQueue(queue: string, limits: QueueLimitsUpdate): Promise<QueueInfo> {
    assertName('queue', queue);
    if (typeof limits !== 'object' || limits === null || Array.isArray(limits)) {
      throw new InvalidJobOptionError('limits', limits, 'an object { globalConcurrency?, rateLimit?, groupConcurrency?, groupRateLimit? } (null removes an override)');
    }
    assertKnownKeys(limits, KNOWN_OPTIONS.limits, '');
    validateLimitOptions(limits, '', (option, value, expected) =>
      // NOTE: null is allowed for a whole limit (removes its override), not inside a rate limit.
      new InvalidJobOptionError(option, value, option.includes('.') ? expected : `${expected}, or null to remove the override`), true);
    const updated = await (await this.database.getRegistry()).updateLimits(queue, limits);
    this.wakeups.wake(queue);
    return updated;
  }

  /**
   * The latest jobs, newest first: of one queue and/or job name, or all; `limit` 1 to 1,000
   * (default 50). For dashboards and pages that show recent jobs.
   *
   * @throws InvalidJobOptionError for a bad queue, name or limit
   */
  async getJobs<T = unknown, R = unknown>(filter: { queue?: string; name?: string; limit?: number } = {}): Promise<Job<T, R>[]> {
    if (filter.queue !== undefined) assertName('queue', filter.queue);
    if (filter.name !== undefined) assertName('name', filter.name);
    const limit = filter.limit ?? 50;
    assertInteger('limit', limit, 1, 1000);
    return (await this.database.getRepository()).list<T, R>({ queue: filter.queue, name: filter.name, limit, newestFirst: true });
  }

  /** Number of jobs in each state, for one queue or all. */
  async getCounts(queue?: string): Promise<JobCounts> {
    if (queue !== undefined) assertName('queue', queue);
    return (await this.database.getRepository()).countByState(queue);
  }

  /**
   * Resolves with the job once it is completed, failed or cancelled, wherever it runs (at once if it
   * already is). Listens for its global finishing events and reads the job when one comes, with a
   * read every second as the fallback (a missed notification, `worker.listen: false`: every 250 ms).
   * Leaves nothing behind once it settles.
   *
   * @param options.timeoutMs how long to wait, an integer from 1 to 2147483647 (default 30,000)
   * @throws WaitForJobTimeoutError when the job did not finish in time
   * @throws JobNotFoundError when there is no such job (or it was deleted while waited for)
   * @throws InvalidJobOptionError for a bad id or option
   */
  async waitForJob<T = unknown, R = unknown>(id: string, options: { timeoutMs?: number } = {}): Promise<Job<T, R>> {
    this.assertId(id);
    if (typeof options !== 'object' || options === null) throw new InvalidJobOptionError('options', options, 'an object { timeoutMs? }');
    assertKnownKeys(options, KNOWN_OPTIONS.waitForJob, '');
    const timeoutMs = options.timeoutMs ?? DEFAULT_WAIT_TIMEOUT_MS;
    assertInteger('timeoutMs', timeoutMs, 1);
    return this.jobEvents.waitForJob<T, R>(id, timeoutMs);
  }

  /**
   * The log of a job (`job.log()` of its handlers), oldest first: at least its last 100 entries.
   * Empty for a job that logged nothing, or that does not exist (any more).
   */
  async getJobLogs(id: string): Promise<JobLogEntry[]> {
    this.assertId(id);
    return this.jobEvents.getJobLogs(id);
  }

  /**
   * Creates or changes the runtime cron schedule `key`: from its next slot on, one job of
   * `spec.name` in `spec.queue` per slot, across all processes (see docs/schedules.md). Changing a
   * schedule keeps its next run unless the expression or zone changed. A queue no processor handles
   * anywhere is allowed (another service may own it): its jobs wait there.
   *
   * @throws InvalidJobOptionError naming the bad key, cron, tz, catchUp, catchUpLimit, overlap or
   *   option, or a key that a `@Schedule` in code uses
   */
  schedule(key: string, spec: ScheduleSpec): Promise<ScheduleInfo> {
    return this.schedules.schedule(key, spec);
  }

  /**
   * Deletes schedule `key` (jobs it already enqueued stay); false when there was none. A schedule
   * declared in code comes back at the next boot of a worker that still declares it (this is for
   * the schedules of processors no service runs any more): remove the decorator, or pause it.
   *
   * @throws InvalidJobOptionError for a bad key
   */
  unschedule(key: string): Promise<boolean> {
    return this.schedules.unschedule(key);
  }

  /** Every schedule of the table, code-declared and runtime, by key. */
  getSchedules(): Promise<ScheduleInfo[]> {
    return this.schedules.list();
  }

  /**
   * Pauses schedule `key` on every node: no slot is enqueued until it is resumed (the pause is
   * stored and survives restarts and reconciliation).
   *
   * @throws ScheduleNotFoundError
   */
  pauseSchedule(key: string): Promise<ScheduleInfo> {
    return this.schedules.pause(key);
  }

  /**
   * Resumes schedule `key`. Slots that passed while it was paused are not caught up: it runs from
   * its next slot after now.
   *
   * @throws ScheduleNotFoundError
   */
  resumeSchedule(key: string): Promise<ScheduleInfo> {
    return this.schedules.resume(key);
  }

  /**
   * Enqueues one run of schedule `key` now, outside its expression (paused or not, overlap or not):
   * its job's `scheduledFor` is now, and it becomes the schedule's last run.
   *
   * @throws ScheduleNotFoundError
   */
  triggerSchedule(key: string): Promise<Job> {
    return this.schedules.trigger(key);
  }

  /**
   * The live worker processes of this table, every host (the worker registry): each with its
   * queues and their concurrency, its jobs running now and its last heartbeat. A killed worker drops
   * out a few lease lengths after its last beat; a gracefully stopped one at once.
   */
  async getWorkers(): Promise<WorkerInfo[]> {
    return this.observability.getWorkers();
  }

  /**
   * The per-minute rollups of every worker process: per queue, job name and minute, outcomes
   * (completed, failed, retried, rescued) and wait-time and run-time histograms with p50/p95.
   * Default: the last hour. A worker writes its share every few seconds (`stats.flushIntervalMs`).
   *
   * @throws InvalidJobOptionError for a bad queue name or a since/until that is not a valid Date
   */
  async getStats(filter: QueueStatsFilter = {}): Promise<QueueStatsRow[]> {
    return this.observability.getStats(filter);
  }

  // ---- Job management API (docs/job-admin.md) ----

  /**
   * One page of the jobs that match a filter, in a keyset order (`sort`, default newest first):
   * pass the page's `next` as `after` for the page after it. Pages stay stable while jobs are
   * added (a cursor is a position, never an offset). A text `search` or a `data` filter examines
   * at most `scanLimit` jobs per page (`scanLimited: true` when it stopped there). Runs under
   * `adminQueryTimeoutMs`.
   *
   * @throws InvalidJobFilterError for a malformed filter, sort, limit or cursor
   * @throws AdminQueryTimeoutError when the database cancelled the query (narrow the filter)
   */
  async listJobs<T = unknown, R = unknown>(options: ListJobsOptions = {}): Promise<JobPage<T, R>> {
    return this.admin.listJobs<T, R>(options);
  }

  /**
   * Deletes a job that is not active (cancel an active job first: its worker is told to stop);
   * returns it as it was. Its unique key, if any, is free at once.
   *
   * @throws JobNotFoundError, InvalidJobStateError (active)
   */
  async deleteJob(id: string): Promise<Job> {
    this.assertId(id);
    return this.admin.deleteJob(id);
  }

  /**
   * Makes a pending job (delayed, or waiting for its retry) due now and wakes its queue's workers.
   * A pending job already due is returned unchanged.
   *
   * @throws JobNotFoundError, InvalidJobStateError (not pending)
   */
  async promote(id: string): Promise<Job> {
    this.assertId(id);
    return this.admin.promote(id);
  }

  /**
   * Changes the data, priority or run time of a pending job, validated as `add()` validates them.
   * Fenced against a worker claiming it meanwhile: applied only if the job is still pending, in
   * one statement; a job claimed first makes it throw `InvalidJobStateError` (active), and nothing
   * is changed.
   *
   * @throws InvalidJobDataError, InvalidJobOptionError for bad values
   * @throws JobNotFoundError, InvalidJobStateError (not pending)
   */
  async updateJob<T = unknown>(id: string, update: JobUpdate<T>): Promise<Job<T>> {
    this.assertId(id);
    return this.admin.updateJob<T>(id, update);
  }

  /**
   * Puts the failed and cancelled jobs of a selection (ids, a filter, or `{ all: true }`) back to
   * pending with a fresh attempt budget, as `retry()` does; returns how many. In batches of
   * `batchSize` (default 1,000), one transaction each. Jobs whose unique key another job holds
   * stay as they are.
   *
   * @throws InvalidJobFilterError for a malformed selection or option
   */
  async retryJobs(selection: JobSelection, options?: BulkActionOptions): Promise<number> {
    return this.admin.bulk('retry', selection, options);
  }

  /**
   * Cancels the pending and active jobs of a selection, as `cancel()` does (the workers running
   * active ones abort their handlers); returns how many. In batches, one transaction each.
   *
   * @throws InvalidJobFilterError for a malformed selection or option
   */
  async cancelJobs(selection: JobSelection, options?: BulkActionOptions): Promise<number> {
    return this.admin.bulk('cancel', selection, options);
  }

  /**
   * Deletes the jobs of a selection that are not active; returns how many. In batches, one
   * transaction each.
   *
   * @throws InvalidJobFilterError for a malformed selection or option
   */
  async deleteJobs(selection: JobSelection, options?: BulkActionOptions): Promise<number> {
    return this.admin.bulk('delete', selection, options);
  }

  /**
   * Makes the pending jobs of a selection that are not due yet due now; returns how many. In
   * batches, one transaction each.
   *
   * @throws InvalidJobFilterError for a malformed selection or option
   */
  async promoteJobs(selection: JobSelection, options?: BulkActionOptions): Promise<number> {
    return this.admin.bulk('promote', selection, options);
  }

  /** Validates (names and options unless `checked` already) and serialises one job. */
  private toRow(queue: string, name: string, data: unknown, options: JobOptions, dataPath: string, checked = false): NewJobRow {
    if (!checked) {
      assertName('queue', queue);
      assertName('name', name);
      validateJobOptions(options);
    }
    const defaults = this.options.defaultJobOptions;
    return {
      queue,
      name,
      data: serializeJson(data, dataPath),
      priority: options.priority ?? defaults.priority ?? 0,
      runAt: options.runAt ?? null,
      delayMs: options.delayMs ?? 0,
      // NOTE: left null unless set per job, so the processor's defaults (known only where it runs)
      // can apply at the first claim.
      maxAttempts: options.maxAttempts ?? null,
      backoff: options.backoff ? JSON.stringify(options.backoff) : null,
      timeoutMs: options.timeoutMs ?? null,
      unique: options.unique
        ? {
            key: options.unique.key,
            hold: options.unique.windowMs !== undefined ? 'window' : (options.unique.until ?? 'finish'),
            windowMs: options.unique.windowMs ?? null,
            replace: options.unique.replace ?? false,
          }
        : null,
      group: options.group ?? null,
    };
  }

  private dueInMs(job: Job): number {
    return Math.max(0, job.runAt.getTime() - Date.now());
  }

  private assertId(id: unknown): asserts id is string {
    if (!isJobId(id)) {
      throw new InvalidJobOptionError('id', id, 'a job id: a string of digits from 1 to 9223372036854775807');
    }
  }
}
