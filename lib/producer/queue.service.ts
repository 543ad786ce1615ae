import { Inject, Injectable } from '@nestjs/common';
import { QueueDatabase } from '../database/queue-database';
import type { NewJobRow } from '../database/job.repository';
import { QueueWakeups } from '../worker/queue-wakeups';
import { InsertBatcher, chunkRows } from './insert-batcher';
import { serializeJson } from './job-data.validator';
import { assertInteger, assertKnownKeys, assertName, validateJobOptions } from './job-options.validator';
import { KNOWN_OPTIONS } from './known-options';
import { InvalidJobOptionError } from '../errors/invalid-job-option.error';
import { JobNotFoundError } from '../errors/job-not-found.error';
import { InvalidJobStateError } from '../errors/invalid-job-state.error';
import { COPY_MIN_ROWS, RESOLVED_QUEUE_OPTIONS } from '../queue.constants';
import { JobState, type Job, type JobCounts } from '../interfaces/job.interface';
import type { BulkJob, JobOptions, UniqueOptions } from '../interfaces/job-options.interface';
import type { ResolvedQueueOptions } from '../queue-options.resolver';
import type { QueueInfo } from '../interfaces/queue-info.interface';

const BIGINT_ID = /^[1-9][0-9]{0,18}$/;
/** Largest PostgreSQL `bigint`: 19-digit strings above it would make the query itself fail. */
const MAX_BIGINT = 9223372036854775807n;

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
  ) {}

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
  async add<T = unknown>(queue: string, name: string, data: T, options: JobOptions = {}): Promise<Job<T>> {
    const row = this.toRow(queue, name, data, options, 'data');
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
  async addBulk<T = unknown>(jobs: BulkJob<T>[]): Promise<Job<T>[]> {
    if (!Array.isArray(jobs)) throw new InvalidJobOptionError('jobs', jobs, 'an array of { queue, name, data, options? }');
    // Everything but the data first: cheap, and it decides how the jobs are inserted.
    const soonest = new Map<string, Date | null>();
    let delayed = false;
    let unique = false;
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
      if (options.delayMs !== undefined && options.delayMs > 0) delayed = true;
      if (options.unique !== undefined) unique = true;
      defaultsOnly &&=
        (options.priority ?? 0) === 0 && options.runAt === undefined && options.maxAttempts === undefined && options.backoff === undefined && options.timeoutMs === undefined;
      const runAt = options.runAt ?? null;
      const known = soonest.get(job.queue);
      if (known === undefined || (known !== null && (runAt === null || runAt < known))) soonest.set(job.queue, runAt);
    });
    const toRow = (i: number) => {
      const job = jobs[i];
      return this.toRow(job.queue, job.name, job.data, job.options ?? {}, `jobs[${i}].data`, true);
    };
    const repository = await this.database.getRepository();
    let added: Job[];
    if (unique) {
      // NOTE: COPY cannot skip a row whose key is held (no ON CONFLICT): statements, in one transaction.
      added = await repository.insertWithUnique(jobs.map((_, i) => toRow(i)), (rows) => [...chunkRows(rows, (row) => row.data)]);
    } else if (!delayed && jobs.length >= COPY_MIN_ROWS) {
      added = await repository.insertByCopy({ count: jobs.length, soonest, defaultsOnly, row: toRow });
    } else {
      added = await repository.insertInChunks([...chunkRows(jobs.map((_, i) => toRow(i)), (row) => row.data)]);
    }
    const due = new Map<string, number>();
    for (const job of added) due.set(job.queue, Math.min(due.get(job.queue) ?? Infinity, this.dueInMs(job)));
    due.forEach((inMs, queue) => this.wakeups.wake(queue, inMs));
    return added as Job<T>[];
  }

  /** The job with this id, or null. */
  async getJob<T = unknown, R = unknown>(id: string): Promise<Job<T, R> | null> {
    this.assertId(id);
    return (await this.database.getRepository()).findById<T, R>(id);
  }

  /**
   * Cancels a pending or active job. An active job's handler is aborted (`job.signal`) on whichever
   * process runs it, and its outcome is discarded. Cancelling a cancelled job is a no-op.
   *
   * @throws JobNotFoundError, InvalidJobStateError (completed or failed jobs cannot be cancelled)
   */
  async cancel(id: string): Promise<Job> {
    this.assertId(id);
    const repository = await this.database.getRepository();
    const cancelled = await repository.cancel(id);
    if (cancelled) {
      const { previousState: _, ...job } = cancelled;
      return job;
    }
    const job = await repository.findById(id);
    if (!job) throw new JobNotFoundError(id);
    if (job.state === JobState.Cancelled) return job;
    throw new InvalidJobStateError(id, 'cancel', job.state, [JobState.Pending, JobState.Active]);
  }

  /**
   * Puts a failed or cancelled job back to pending, due now, with a fresh attempt budget
   * (`attempts` back to 0; `lastError` is kept for reference).
   *
   * @throws JobNotFoundError, InvalidJobStateError
   */
  async retry(id: string): Promise<Job> {
    this.assertId(id);
    const repository = await this.database.getRepository();
    const revived = await repository.retry(id);
    if (revived) {
      this.wakeups.wake(revived.queue);
      return revived;
    }
    const job = await repository.findById(id);
    if (!job) throw new JobNotFoundError(id);
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
   * {@link QueueInfo.counts}).
   */
  async getQueues(): Promise<QueueInfo[]> {
    return (await this.database.getRegistry()).list();
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
    };
  }

  private dueInMs(job: Job): number {
    return Math.max(0, job.runAt.getTime() - Date.now());
  }

  private assertId(id: unknown): asserts id is string {
    if (typeof id !== 'string' || !BIGINT_ID.test(id) || BigInt(id) > MAX_BIGINT) {
      throw new InvalidJobOptionError('id', id, 'a job id: a string of digits from 1 to 9223372036854775807');
    }
  }
}
