import { performance } from 'node:perf_hooks';
import { Inject, Injectable } from '@nestjs/common';
import { QueueDatabase } from '../database/queue-database';
import { JobSearchRepository } from '../database/job-search.repository';
import { JobAdminRepository } from '../database/job-admin.repository';
import { FINISHED_STATES, type JobQuery, type SortKeys } from '../database/sql/job-search.statements';
import { ACTION_STATES, type BatchRow, type BatchSource, type BulkAction } from '../database/sql/job-admin.statements';
import { QueueWakeups } from '../worker/queue-wakeups';
import { serializeJson } from './job-data.validator';
import { assertInteger, assertKnownKeys, assertName, validateJobOptions } from './job-options.validator';
import { isJobId } from './job-id';
import { KNOWN_OPTIONS } from './known-options';
import { InvalidJobFilterError } from '../errors/invalid-job-filter.error';
import { InvalidJobDataError } from '../errors/invalid-job-data.error';
import { InvalidJobOptionError } from '../errors/invalid-job-option.error';
import { JobDependencyError } from '../errors/job-dependency.error';
import { JobNotFoundError } from '../errors/job-not-found.error';
import { InvalidJobStateError } from '../errors/invalid-job-state.error';
import { RESOLVED_QUEUE_OPTIONS } from '../queue.constants';
import { JobState, type Job } from '../interfaces/job.interface';
import type { BulkActionOptions, BulkActionProgress, JobFilter, JobPage, JobSelection, JobSort, JobUpdate, ListJobsOptions } from '../interfaces/job-admin.interface';
import type { ResolvedQueueOptions } from '../queue-options.resolver';

const filterError = (field: string, value: unknown, expected: string) => new InvalidJobFilterError(field, value, expected);

const SORTS: readonly JobSort[] = ['newest', 'oldest', 'nextToRun', 'lastFinished'];
/** Cursor tags: one letter per sort, so a cursor of one sort is refused by another. */
const SORT_TAGS: Record<JobSort, string> = { newest: 'n', oldest: 'o', nextToRun: 'r', lastFinished: 'f' };
const DEFAULT_LIMIT = 50;
const MAX_LIMIT = 1000;
const DEFAULT_SCAN_LIMIT = 20_000;
const MAX_SCAN_LIMIT = 10_000_000;
const DEFAULT_BATCH_SIZE = 1000;
const MAX_BATCH_SIZE = 10_000;
const DEFAULT_PACE = 2;
const MAX_PACE = 100;
const MAX_SEARCH_LENGTH = 200;
/** Largest `data` filter, as JSON. */
const MAX_DATA_FILTER_BYTES = 64 * 1024;
const MICROS = /^-?[0-9]{1,18}$/;

/**
 * The job management API behind `QueueService.listJobs()`, `deleteJob()`, `promote()`,
 * `updateJob()` and the bulk actions: validates every input into a typed error before anything
 * reaches the database, pages with opaque keyset cursors, and runs bulk actions batch by batch.
 */
@Injectable()
export class JobAdmin {
  private repositories?: { search: JobSearchRepository; admin: JobAdminRepository };

  constructor(
    @Inject(RESOLVED_QUEUE_OPTIONS) private readonly options: ResolvedQueueOptions,
    private readonly database: QueueDatabase,
    private readonly wakeups: QueueWakeups,
  ) {}

  /** See `QueueService.listJobs()`. */
  async listJobs<T, R>(options: ListJobsOptions = {}): Promise<JobPage<T, R>> {
    if (typeof options !== 'object' || options === null) throw filterError('options', options, 'an object');
    assertKnownKeys(options, KNOWN_OPTIONS.listJobs, '', filterError);
    const sort = options.sort ?? 'newest';
    if (!SORTS.includes(sort)) throw filterError('sort', sort, SORTS.map((s) => `'${s}'`).join(', '));
    const limit = options.limit ?? DEFAULT_LIMIT;
    assertInteger('limit', limit, 1, MAX_LIMIT, filterError);
    const scanLimit = options.scanLimit ?? DEFAULT_SCAN_LIMIT;
    assertInteger('scanLimit', scanLimit, 1, MAX_SCAN_LIMIT, filterError);
    const query = toQuery(options);
    if (sort === 'nextToRun') {
      if (query.queue === null) throw filterError('queue', undefined, "a queue: sort 'nextToRun' lists one queue's pending jobs");
      query.states ??= [JobState.Pending];
      if (query.states.length !== 1 || query.states[0] !== JobState.Pending) throw filterError('state', options.state, `'pending' (or none) with sort 'nextToRun'`);
    }
    if (sort === 'lastFinished') {
      query.states ??= FINISHED_STATES;
      const other = query.states.find((s) => !FINISHED_STATES.includes(s));
      if (other) throw filterError('state', options.state, `finished states only (${FINISHED_STATES.join(', ')}) with sort 'lastFinished'`);
    }
    const cursor = options.after === undefined ? null : decodeCursor(options.after, sort);
    const page = await (await this.repos()).search.findPage<T, R>(query, sort, cursor, limit, scanLimit);
    return { jobs: page.jobs, next: page.next ? encodeCursor(sort, page.next) : null, scanLimited: page.scanLimited };
  }

  /** See `QueueService.deleteJob()`; `id` is checked by the caller. */
  async deleteJob(id: string): Promise<Job> {
    const deleted = await (await this.repos()).admin.deleteOne(id);
    return deleted ?? this.refuse(id, 'delete', ACTION_STATES.delete);
  }

  /** See `QueueService.promote()`; `id` is checked by the caller. */
  async promote(id: string): Promise<Job> {
    const promoted = await (await this.repos()).admin.promoteOne(id);
    if (!promoted) return this.refuse(id, 'promote', ACTION_STATES.promote);
    this.wakeups.wake(promoted.queue);
    return promoted;
  }

  /** See `QueueService.updateJob()`; `id` is checked by the caller. */
  async updateJob<T>(id: string, update: JobUpdate<T>): Promise<Job<T>> {
    if (typeof update !== 'object' || update === null) throw new InvalidJobOptionError('update', update, 'an object { data?, priority?, runAt? }');
    assertKnownKeys(update, KNOWN_OPTIONS.jobUpdate, '');
    const given = KNOWN_OPTIONS.jobUpdate.filter((key) => update[key] !== undefined);
    if (given.length === 0) throw new InvalidJobOptionError('update', update, 'at least one of data, priority, runAt');
    // NOTE: exactly as add() checks them: the same validators.
    validateJobOptions({ priority: update.priority, runAt: update.runAt });
    const data = update.data === undefined ? null : serializeJson(update.data, 'data');
    const updated = await (await this.repos()).admin.updateOne(id, data, update.priority ?? null, update.runAt ?? null);
    if (!updated) return this.refuse(id, 'update', [JobState.Pending]);
    this.wakeups.wake(updated.queue, Math.max(0, updated.runAt.getTime() - Date.now()));
    return updated as Job<T>;
  }

  /**
   * Runs `action` over `selection` batch by batch (one transaction each); returns how many jobs it
   * applied to. Jobs the action does not apply to (their state) are skipped, not counted.
   */
  async bulk(action: BulkAction, selection: JobSelection, options: BulkActionOptions = {}): Promise<number> {
    if (typeof options !== 'object' || options === null) throw filterError('options', options, 'an object { batchSize?, pace?, signal?, onProgress? }');
    assertKnownKeys(options, KNOWN_OPTIONS.bulkAction, '', filterError);
    const batchSize = options.batchSize ?? DEFAULT_BATCH_SIZE;
    assertInteger('batchSize', batchSize, 1, MAX_BATCH_SIZE, filterError);
    if (options.onProgress !== undefined && typeof options.onProgress !== 'function') throw filterError('onProgress', options.onProgress, 'a function');
    const pace = options.pace ?? DEFAULT_PACE;
    if (typeof pace !== 'number' || !(pace >= 0 && pace <= MAX_PACE)) throw filterError('pace', pace, `a number from 0 to ${MAX_PACE}`);
    const signal = options.signal;
    if (signal !== undefined && !(typeof signal === 'object' && signal !== null && typeof signal.aborted === 'boolean')) throw filterError('signal', signal, 'an AbortSignal');
    const target = toSelection(selection);
    const { admin } = await this.repos();
    const progress: BulkActionProgress = { affected: 0, examined: 0, batches: 0 };
    const record = (row: BatchRow) => {
      progress.affected += row.affected;
      progress.examined += row.examined;
      progress.batches++;
      for (const queue of new Set(row.queues ?? [])) this.wakeups.wake(queue);
      try {
        options.onProgress?.({ ...progress });
      } catch {
        // NOTE: a progress display that throws must not stop (or half-stop) the action.
      }
    };
    // NOTE: each batch is followed by a pause of `pace` times its own duration (none after the last),
    // so that a bulk action over a big table leaves the database to the workers most of the time:
    // measured on 1,000,000 jobs (bench/admin.mjs), a back-to-back retry of 100,000 cut a
    // concurrent drain of another queue to 0.63 of its speed; paced at 1, 0.63 and 0.80; at 2, 0.78 and 0.95.
    const run = async (source: BatchSource, last: (row: BatchRow) => boolean): Promise<boolean> => {
      const started = performance.now();
      const row = await admin.runBatch(action, source);
      record(row);
      const done = last(row);
      if (!done && pace > 0) await pause((performance.now() - started) * pace, signal);
      return done;
    };
    if ('ids' in target) {
      for (let start = 0; start < target.ids.length && !signal?.aborted; start += batchSize) {
        await run({ ids: target.ids.slice(start, start + batchSize) }, () => start + batchSize >= target.ids.length);
      }
      return progress.affected;
    }
    const states = target.query.states === null ? ACTION_STATES[action] : target.query.states.filter((s) => ACTION_STATES[action].includes(s));
    if (states.length === 0) return 0;
    const query: JobQuery = { ...target.query, states };
    let after: string | null = null;
    while (!signal?.aborted) {
      let next: string | null = null;
      const done = await run({ query, after, batchSize }, (row) => {
        next = row.last;
        return row.last === null || row.examined < batchSize;
      });
      if (done) break;
      after = next;
    }
    return progress.affected;
  }

  private async refuse(id: string, operation: string, allowed: readonly JobState[]): Promise<never> {
    const job = await (await this.database.getRepository()).findById(id);
    if (!job) throw new JobNotFoundError(id);
    // NOTE: in an allowed state and still refused: an unfinished job depends on it (flows).
    if (allowed.includes(job.state)) throw new JobDependencyError('needed', id, []);
    throw new InvalidJobStateError(id, operation, job.state, allowed);
  }

  private async repos(): Promise<{ search: JobSearchRepository; admin: JobAdminRepository }> {
    const jobs = await this.database.getRepository();
    const timeoutMs = this.options.adminQueryTimeoutMs;
    this.repositories ??= { search: new JobSearchRepository(jobs, timeoutMs), admin: new JobAdminRepository(jobs, timeoutMs) };
    return this.repositories;
  }
}

/** Waits `ms`, or less if `signal` aborts meanwhile. */
function pause(ms: number, signal: AbortSignal | undefined): Promise<void> {
  if (signal?.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}

/** The filter part of listJobs options or of a bulk selection, validated. */
function toQuery(filter: JobFilter): JobQuery {
  const query: JobQuery = { queue: null, states: null, name: null, id: null, errorPattern: null, data: null };
  if (filter.queue !== undefined) {
    assertName('queue', filter.queue, filterError);
    query.queue = filter.queue;
  }
  if (filter.name !== undefined) {
    assertName('name', filter.name, filterError);
    query.name = filter.name;
  }
  if (filter.state !== undefined) query.states = toStates(filter.state);
  if (filter.search !== undefined) {
    const search: unknown = filter.search;
    if (typeof search !== 'string' || search.trim().length === 0 || search.length > MAX_SEARCH_LENGTH || search.includes('\u0000') || !(search as string & { isWellFormed(): boolean }).isWellFormed()) {
      throw filterError('search', search, `a job id or a text of 1 to ${MAX_SEARCH_LENGTH} characters (no NUL, no lone UTF-16 surrogates)`);
    }
    const text = search.trim();
    if (isJobId(text as unknown)) query.id = text;
    // NOTE: LIKE's wildcards and escape character in the text are taken literally.
    else query.errorPattern = `%${text.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
  }
  if (filter.data !== undefined) {
    const data = filter.data;
    if (typeof data !== 'object' || data === null || Array.isArray(data)) throw filterError('data', data, 'an object: a deep partial of the jobs\' data, e.g. { user: { id: 7 } }');
    let json: string;
    try {
      json = serializeJson(data, 'data');
    } catch (error) {
      if (error instanceof InvalidJobDataError) throw filterError(error.path, data, `JSON data: ${error.problem}`);
      throw error;
    }
    if (Buffer.byteLength(json) > MAX_DATA_FILTER_BYTES) throw filterError('data', data, `at most ${MAX_DATA_FILTER_BYTES} bytes as JSON`);
    query.data = json;
  }
  return query;
}

function toStates(state: unknown): JobState[] {
  const known = Object.values(JobState) as string[];
  const expected = `a job state (${known.join(', ')}) or a non-empty array of them`;
  const list = Array.isArray(state) ? state : [state];
  if (list.length === 0) throw filterError('state', state, expected);
  for (const s of list) if (typeof s !== 'string' || !known.includes(s)) throw filterError('state', state, expected);
  return [...new Set(list as JobState[])];
}

/** A bulk selection, validated: ids, or a query (`{ all: true }`: a query of nothing). */
function toSelection(selection: JobSelection): { ids: string[] } | { query: JobQuery } {
  if (typeof selection !== 'object' || selection === null) throw filterError('selection', selection, '{ ids: [...] }, a filter { queue?, state?, name?, search?, data? }, or { all: true }');
  if ('ids' in selection) {
    assertKnownKeys(selection, ['ids'], '', filterError);
    const ids = selection.ids;
    if (!Array.isArray(ids)) throw filterError('ids', ids, 'an array of job ids');
    ids.forEach((id, i) => {
      if (!isJobId(id)) throw filterError(`ids[${i}]`, id, 'a job id: a string of digits from 1 to 9223372036854775807');
    });
    return { ids };
  }
  if ('all' in selection) {
    assertKnownKeys(selection, ['all'], '', filterError);
    if (selection.all !== true) throw filterError('all', selection.all, 'true');
    return { query: toQuery({}) };
  }
  assertKnownKeys(selection, KNOWN_OPTIONS.jobFilter, '', filterError);
  // NOTE: an empty filter would act on every job of the table: that has to be asked for by name.
  if (!KNOWN_OPTIONS.jobFilter.some((key) => (selection as Record<string, unknown>)[key] !== undefined)) {
    throw filterError('selection', selection, 'at least one of queue, state, name, search, data; or { all: true } for every job');
  }
  return { query: toQuery(selection) };
}

function encodeCursor(sort: JobSort, keys: SortKeys): string {
  const values = sort === 'nextToRun' ? [keys.priority, keys.micros, keys.id] : sort === 'lastFinished' ? [keys.micros, keys.id] : [keys.id];
  return Buffer.from(JSON.stringify([SORT_TAGS[sort], ...values])).toString('base64url');
}

function decodeCursor(cursor: unknown, sort: JobSort): SortKeys {
  const refuse = (why: string) => filterError('after', cursor, `a cursor from a previous page's \`next\` (${why})`);
  if (typeof cursor !== 'string' || cursor.length === 0 || cursor.length > 200 || !/^[A-Za-z0-9_-]+$/.test(cursor)) throw refuse('not a cursor');
  let decoded: unknown;
  try {
    decoded = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    throw refuse('not a cursor');
  }
  if (!Array.isArray(decoded) || typeof decoded[0] !== 'string') throw refuse('not a cursor');
  const [tag, ...values] = decoded as [string, ...unknown[]];
  if (tag !== SORT_TAGS[sort]) {
    const of = SORTS.find((s) => SORT_TAGS[s] === tag);
    throw refuse(of ? `it pages sort '${of}', not '${sort}'` : 'not a cursor');
  }
  const id = values[values.length - 1];
  if (!isJobId(id)) throw refuse('not a cursor');
  const micros = (value: unknown) => {
    if (typeof value !== 'string' || !MICROS.test(value)) throw refuse('not a cursor');
    return value;
  };
  if (sort === 'nextToRun') {
    const [priority, at] = values;
    if (values.length !== 3 || typeof priority !== 'number' || !Number.isInteger(priority) || Math.abs(priority) > 2_147_483_647) throw refuse('not a cursor');
    return { priority, micros: micros(at), id };
  }
  if (sort === 'lastFinished') {
    if (values.length !== 2) throw refuse('not a cursor');
    return { micros: micros(values[0]), id };
  }
  if (values.length !== 1) throw refuse('not a cursor');
  return { id };
}
