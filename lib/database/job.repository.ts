import { createHash } from 'node:crypto';
import type { Pool, PoolClient, PoolConfig, QueryConfig, QueryResult } from 'pg';
import type { DataSource, EntityManager } from 'typeorm';
import { CLAIMED_COLUMN_COUNT, buildJobStatements, type JobStatements } from './sql/job.statements';
import { inClaimOrder, toClaimedJob, toJob, type ClaimContext, type RawJobRow } from './job-row.mapper';
import { claimedTraceContexts } from './trace-context';
import { isConnectionError, isDeadlock, isUniqueViolation, translateDatabaseError } from './database-errors';
import { acquireBounded, destroyConnection, queryBounded, queryOnClient, runBounded } from './bounded-statement';
import { SingleValueQuery } from './single-value.query';
import { CopyInQuery, type CopyInRows } from './copy-in.query';
import type { TableNaming } from './table-naming';
import { JobState, type Job, type JobCounts } from '../interfaces/job.interface';
import type { BackoffOptions } from '../interfaces/job-options.interface';
import { COPY_FIRST_PIECE_ROWS, COPY_MIN_ROWS, COPY_PIECE_ROWS, DEFAULT_QUERY_TIMEOUT_MS } from '../queue.constants';
import { UniqueKeyHeldError } from '../errors/unique-key-held.error';
import { LATEST_SCHEMA_VERSION, SCHEMA_STEPS, parseSchemaVersion, schemaVersionConstraints, writeSchemaVersion } from './migrations/job-table.ddl';

/** What the flow trigger did to a dependent, as logged for the session that asked (see FLOW_LOG_SETTING). */
export interface FlowLogEvent {
  e: 'blocked' | 'unblocked' | 'failed';
  id: string;
  q: string;
  n: string;
}

/** A job to insert, already validated and serialised. */
export interface NewJobRow {
  queue: string;
  name: string;
  /** JSON text. */
  data: string;
  priority: number;
  runAt: Date | null;
  delayMs: number;
  maxAttempts: number | null;
  /** JSON text or null. */
  backoff: string | null;
  timeoutMs: number | null;
  /** The unique key and how it is held, or null (the common case). */
  unique: UniqueRow | null;
  /** The job's group (`group_key`), or null (the common case). */
  group: string | null;
  /** JSON text of the producer span's trace context (tracing on, inside a recording span); else absent. */
  traceContext?: string;
}

/** A job's unique key, as inserted (see schema step 4). */
export interface UniqueRow {
  key: string;
  hold: 'finish' | 'start' | 'window';
  /** The throttle window (hold 'window' only). */
  windowMs: number | null;
  replace: boolean;
}

/** Bulk inserts with unique keys that skip the optimistic COPY after one met a held key. */
const UNIQUE_COPY_SKIPS_AFTER_CONFLICT = 16;

/** How many times a cancel that lost a deadlock (see `cancel`) is tried. */
const CANCEL_TRIES = 3;

/** How many times an insert whose key's holder vanished meanwhile is tried again. */
const UNIQUE_INSERT_TRIES = 10;

/**
 * The jobs of a bulk insert by COPY: counted and summed up before anything is sent, each row made
 * (validated and serialised) only when its turn comes to be sent.
 */
export interface CopyRowSource {
  count: number;
  /** Per queue, the earliest `runAt` given among its jobs, or null when one of them is due now. */
  soonest: Map<string, Date | null>;
  /**
   * Whether every row leaves priority, run time and run options to the table's defaults: then COPY
   * sends only queue, name and data (less for both sides to write and parse).
   */
  defaultsOnly: boolean;
  /** Whether rows carry unique keys (held 'finish' or 'start'; never a window: see `insertWithUnique`). */
  withUnique?: boolean;
  /** Whether some rows have a group: then COPY sends the group column too. */
  withGroup?: boolean;
  /** Makes row `index`; may throw (bad input), which aborts the whole insert. */
  row(index: number): NewJobRow;
}

/** The end of one attempt, as the completer writes it. */
export interface AttemptOutcome {
  id: string;
  /** The job's `claims` when this worker claimed it: the fencing token. */
  claim: number;
  state: 'completed' | 'failed' | 'pending';
  /** JSON text of the result (completed only). */
  result: string | null;
  /** JSON text of the error (failed, retried). */
  error: string | null;
  /** Delay before the next attempt (pending only). */
  delayMs: number;
  /** Hand back without counting the attempt (graceful shutdown). */
  refund: boolean;
  /**
   * Handed back by a RateLimitedError: 'keepPlace' once its block is written (a grouped job then
   * keeps its run time, so it stays its group's next job), 'delayed' when only the job waits.
   */
  rateLimited?: 'keepPlace' | 'delayed';
}

/** A job the rescuer put back (state `pending`) or failed (attempts spent). */
/** Defaults fixed into a job when it is first claimed. */
export interface ClaimDefaults {
  maxAttempts: number;
  backoff: BackoffOptions;
  timeoutMs: number | null;
}

/** The result of a limited claim (see `JobRepository.claimLimited`). */
export interface LimitedClaim {
  jobs: Job[];
  /** When a limit lets more jobs start (ms from now), or null when no limit said. */
  waitMs: number | null;
  /** More jobs may be claimable now, or as soon as a job of this process ends. */
  more: boolean;
  /** Whether the queue still has limits (false: claim with the plain `claim` again). */
  limited: boolean;
  /** Global concurrency (or this worker's fair share of it) is full: claim again when a job of this process ends. */
  full: boolean;
  /** Global concurrency is the queue's only limit: claim with a permit (`acquirePermit`, `completeAndClaimPermitted`). */
  permits: boolean;
}

/** The result of a permitted claim (see `JobRepository.completeAndClaimPermitted`). */
export interface PermittedClaim {
  jobs: Job[];
  /** The permit's slots, or null when this worker has no permit that applies (acquire one). */
  slots: number | null;
  /** When a RateLimitedError block of the queue ends (ms from now), or null. */
  waitMs: number | null;
  /** The ids of the completions written. */
  written: Set<string>;
}

/** A worker's permit for a queue's global concurrency (see `JobRepository.acquirePermit`). */
export interface Permit {
  /** Jobs of the queue this worker may hold active at once. */
  slots: number;
  /** Its fair share: `slots` may be less for now, while other workers hold more than theirs. */
  share: number;
  /** 'permits', or how to claim the queue instead (permits do not apply to it). */
  mode: 'permits' | 'limited' | 'plain';
}

/** How the repository talks to the database (module options `queryTimeoutMs`, `preparedStatements`). */
export interface RepositorySettings {
  /** Bound of every statement, connection acquisition included; of a COPY's progress (ms). */
  queryTimeoutMs: number;
  /** Named prepared statements (false: every statement unnamed, for PgBouncer in transaction mode). */
  preparedStatements: boolean;
  /** Claims also read each job's trace context (tracing on). */
  traceContext?: boolean;
}

/** What the rescue statement returns of each job it rescued. */
export interface RescuedJob {
  id: string;
  queue: string;
  name: string;
  /** Attempts counted, the lapsed one included. */
  attempts: number;
  state: JobState;
}

/** Keepalive probes start after a connection of ours has been silent this long (ms). */
const KEEPALIVE_DELAY_MS = 10_000;
/** How long ending the worker pool may wait for the server's goodbyes before closing the sockets. */
const POOL_END_GRACE_MS = 1000;

/**
 * The only place that talks SQL to the job table. The application's calls (`QueueService`) go
 * straight to the pg pool that TypeORM's DataSource owns; the worker's own statements (claims,
 * heartbeats, outcome writes, rescues, retention) to a small pool of its own (`openWorkerPool`),
 * so they never wait behind the application's queries. Both as named prepared statements unless
 * disabled: no per-query QueryRunner, one parse per connection. Statements inside a user's
 * transaction go through the user's `EntityManager`. Every statement is bounded (see
 * `runBounded`) except the schema steps of a migration and those in a user's transaction.
 */
export class JobRepository {
  readonly statements: JobStatements;
  private readonly names = new Map<string, string>();
  /** See `insertWithUnique`: how many more unique bulk inserts go by statements before a COPY is tried again. */
  private uniqueCopySkips = 0;
  private workerPool?: Pool;

  constructor(
    readonly dataSource: DataSource,
    readonly naming: TableNaming,
    readonly settings: RepositorySettings = { queryTimeoutMs: DEFAULT_QUERY_TIMEOUT_MS, preparedStatements: true },
  ) {
    this.statements = buildJobStatements(naming);
  }

  /** TypeORM's pg pool (the master pool when replication is configured). */
  get pool(): Pool {
    const pool = (this.dataSource.driver as unknown as { master?: Pool }).master;
    if (!pool) throw translateDatabaseError('query', new Error('Driver not Connected: the TypeORM DataSource is not initialized or was destroyed'));
    return pool;
  }

  /** A new connection outside the pools, with the app pool's settings (used for LISTEN). */
  createDedicatedClient(): PoolClient {
    const pool = this.pool as AppPool;
    return new pool.Client(this.ownConnectionSettings(pool));
  }

  /**
   * Opens the worker's own pool of `size` connections, with the settings of TypeORM's (host, user,
   * password, TLS, …), TCP keepalive on, and connecting bounded by `queryTimeoutMs` unless the app
   * set its own connect timeout. Until it is open (and after it is closed) the worker's statements
   * use TypeORM's pool.
   */
  openWorkerPool(size: number): void {
    if (this.workerPool) return;
    const app = this.pool as AppPool;
    const PoolClass = app.constructor as new (config: Omit<PoolConfig, 'Client'> & { Client: unknown }) => Pool;
    const pool = new PoolClass({ ...this.ownConnectionSettings(app), Client: app.Client, max: size, min: 0 });
    // NOTE: an idle client whose connection is lost makes the pool emit 'error'; unheard, it would
    // crash the process. The next statement reconnects.
    pool.on('error', () => undefined);
    this.workerPool = pool;
  }

  /**
   * Connects `count` of the worker pool's connections now, at boot, rather than on the first
   * claim and the first outcome write, which would otherwise each wait for a connection to be made
   * (and statements to be parsed on it) while jobs are due. Failures are ignored: the statements
   * will connect (or fail) themselves.
   */
  async warmWorkerPool(count: number): Promise<void> {
    const pool = this.workerPool;
    if (!pool) return;
    const clients = await Promise.all(Array.from({ length: count }, () => acquireBounded(pool, this.settings.queryTimeoutMs).catch(() => undefined)));
    for (const client of clients) client?.release();
  }

  /** Ends the worker's pool; the server's goodbyes are awaited for a second at most. */
  async closeWorkerPool(): Promise<void> {
    const pool = this.workerPool;
    this.workerPool = undefined;
    if (!pool) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([pool.end().catch(() => undefined), new Promise((resolve) => (timer = setTimeout(resolve, POOL_END_GRACE_MS)))]);
    clearTimeout(timer);
    // NOTE: on a silent network the goodbyes never come: close what is left (pg-pool's own list).
    for (const client of (pool as unknown as { _clients?: PoolClient[] })._clients ?? []) destroyConnection(client);
  }

  /** The pool of the worker's statements: its own once open, else TypeORM's. */
  private get ownPool(): Pool {
    return this.workerPool ?? this.pool;
  }

  private ownConnectionSettings(app: AppPool): PoolConfig {
    const options = app.options;
    return {
      ...options,
      keepAlive: true,
      keepAliveInitialDelayMillis: options.keepAliveInitialDelayMillis ?? KEEPALIVE_DELAY_MS,
      connectionTimeoutMillis: options.connectionTimeoutMillis || this.settings.queryTimeoutMs,
    };
  }

  /**
   * Inserts rows by statement: one row plainly, more as one JSON batch. In `manager`'s
   * transaction when given.
   */
  async insert(rows: NewJobRow[], manager?: EntityManager): Promise<Job[]> {
    if (rows.length === 0) return [];
    // NOTE: a traced row goes by the batch statement, the only one with the trace column.
    if (rows.length === 1 && rows[0].traceContext === undefined) {
      const row = rows[0];
      const [text, values] = isDueWithDefaults(row)
        ? [this.statements.insertOneDue, [row.queue, row.name, row.data]]
        : row.group === null
          ? [this.statements.insertOne, oneRowParams(row)]
          : [this.statements.insertOneGrouped, [...oneRowParams(row), row.group]];
      const job = manager ? (await this.run<{ job: string }>('insert', text, values, manager))[0].job : await this.value('insert', text, values);
      const comma = job.indexOf(',');
      return toInsertedJobs(rows, { ids: job.slice(0, comma), now: Number(job.slice(comma + 1)) });
    }
    const [inserted] = await this.run<{ ids: string; now: number }>('insert', this.statements.insert, [`[${batchJson(rows)}]`], manager);
    return toInsertedJobs(rows, inserted);
  }

  /**
   * Inserts one job with a unique key, or returns the holder of the key (`duplicate: true`), having
   * replaced its data, priority and run time when asked to and it has not started. In `manager`'s
   * transaction when given.
   */
  async insertUnique(row: NewJobRow, manager?: EntityManager): Promise<Job> {
    const u = row.unique!;
    const text = u.replace ? this.statements.insertUniqueReplacing : this.statements.insertUnique;
    const windowMs = u.windowMs === null ? null : String(u.windowMs);
    const params = [...oneRowParams(row), u.key, u.hold, windowMs, row.group, row.traceContext ?? null];
    for (let tries = 1; ; tries++) {
      const job = manager ? ((await this.run<{ job: string }>('insert', text, params, manager))[0]?.job ?? null) : await this.optionalValue('insert', text, params);
      if (job !== null && job[0] !== '=') {
        const [inserted] = toInsertedJobs([row], { ids: job.slice(0, job.indexOf(',')), now: Number(job.slice(job.indexOf(',') + 1)) });
        return Object.assign(inserted, { duplicate: false });
      }
      // The key was held: the holder as it is now (replaced, or left alone because it runs).
      const [holder] = job !== null
        ? await this.run<RawJobRow>('insert', this.statements.getById, [job.slice(1)], manager)
        : await this.run<RawJobRow>('insert', this.statements.findUniqueHolder, [row.queue, u.key, windowMs], manager);
      if (holder) return Object.assign(toJob(holder), { duplicate: true });
      // NOTE: the holder that made the insert conflict finished before the look-up saw it; the key
      // is free now, or held by yet another job: the next try finds out.
      if (tries >= UNIQUE_INSERT_TRIES) {
        throw translateDatabaseError('insert', new Error(`nestjs-pg-queue: the unique key ${JSON.stringify(u.key)} changed holders ${tries} times during one add()`));
      }
    }
  }

  /**
   * Inserts a batch in which some jobs have unique keys, all in one transaction: each key once (the
   * first of the batch, or the last with `replace`), the others of the batch and those the table
   * already held returned as duplicates of their holder. Jobs come back in input order.
   */
  async insertWithUnique(rows: NewJobRow[], chunk: (rows: NewJobRow[]) => NewJobRow[][]): Promise<Job[]> {
    // NOTE: traced rows go by statements, which carry the trace column; the COPY does not.
    const copyable =
      rows.length >= COPY_MIN_ROWS &&
      rows.every((r) => r.delayMs === 0 && r.traceContext === undefined && (!r.unique || (!r.unique.replace && r.unique.hold !== 'window')));
    if (copyable && this.uniqueCopySkips === 0) {
      const jobs = await this.insertUniqueByCopy(rows);
      if (jobs) return jobs;
      // NOTE: a batch that met a held key is likely followed by more: skip the COPY for a while.
      this.uniqueCopySkips = UNIQUE_COPY_SKIPS_AFTER_CONFLICT;
    } else if (copyable) {
      this.uniqueCopySkips--;
    }
    return this.insertWithUniqueStatements(rows, chunk);
  }

  /**
   * The fast path of `insertWithUnique`, for large batches without replacements, windows or
   * delays: optimistic, by COPY, each key of the batch once (the first job with it). A key some job
   * in the table holds makes the unique index fail the COPY whole (nothing is stored): then null is
   * returned and the statement path settles the batch. Measured on batches of 1,000 fresh keys:
   * about 1.4 times a plain addBulk's time, against 2.5 to 3 times for the statement path, or for
   * looking the keys up before the COPY (the look-up alone took 7-25 ms per 1,000 keys).
   */
  private async insertUniqueByCopy(rows: NewJobRow[]): Promise<Job[] | null> {
    const keyOf = (r: NewJobRow) => `${r.queue}\u0000${r.unique!.key}`;
    const first = new Map<string, number>();
    const rep = rows.map((r, i) => {
      if (!r.unique) return i;
      const key = keyOf(r);
      if (!first.has(key)) first.set(key, i);
      return first.get(key)!;
    });
    const toCopy = rows.map((_, i) => i).filter((i) => rep[i] === i);
    const soonest = new Map<string, Date | null>();
    for (const i of toCopy) {
      const { queue, runAt } = rows[i];
      const known = soonest.get(queue);
      if (known === undefined || (known !== null && (runAt === null || runAt < known))) soonest.set(queue, runAt);
    }
    let inserted: Job[];
    try {
      // NOTE: as in a plain addBulk, only queue, name and data (and here the key) when every job
      // leaves the rest to the table's defaults.
      const defaultsOnly = toCopy.every((i) => isDueWithDefaults({ ...rows[i], unique: null, group: null }));
      const withGroup = toCopy.some((i) => rows[i].group !== null);
      inserted = await this.insertByCopy({ count: toCopy.length, soonest, defaultsOnly, withUnique: true, withGroup, row: (k) => rows[toCopy[k]] });
    } catch (error) {
      if (isUniqueViolation(error)) return null;
      throw error;
    }
    const jobs = new Map<number, Job>();
    toCopy.forEach((i, k) => jobs.set(i, rows[i].unique ? Object.assign(inserted[k], { duplicate: false }) : inserted[k]));
    return rows.map((_, i) => (rep[i] === i ? jobs.get(i)! : { ...jobs.get(rep[i])!, duplicate: true }));
  }

  private async insertWithUniqueStatements(rows: NewJobRow[], chunk: (rows: NewJobRow[]) => NewJobRow[][]): Promise<Job[]> {
    return this.inTransaction('insert', async (client) => {
      // The window numbers, from this transaction's now(), so every statement below agrees on them.
      const windows = [...new Set(rows.filter((r) => r.unique?.hold === 'window').map((r) => r.unique!.windowMs!))];
      const slots = new Map<number, string>();
      if (windows.length > 0) {
        const { rows: found } = await queryOnClient<{ window_ms: string; slot: string }>(client, this.settings.queryTimeoutMs, this.statements.windowSlots, [windows]);
        for (const w of found) slots.set(Number(w.window_ms), w.slot);
      }
      const slotOf = (r: NewJobRow) => (r.unique?.hold === 'window' ? slots.get(r.unique.windowMs!)! : '0');
      const keyOf = (queue: string, key: string, slot: string) => `${queue}\u0000${key}\u0000${slot}`;
      // Each key once: the representative of each input row is the first with its key, or a later
      // one that replaces it.
      const representative = new Map<string, number>();
      const rep = rows.map((r, i) => {
        if (!r.unique) return i;
        const key = keyOf(r.queue, r.unique.key, slotOf(r));
        if (!representative.has(key) || r.unique.replace) representative.set(key, i);
        return key;
      });
      const repIndex = (i: number) => (typeof rep[i] === 'number' ? (rep[i] as number) : representative.get(rep[i] as string)!);
      const jobs = new Map<number, Job>();
      let todo = rows.map((_, i) => i).filter((i) => repIndex(i) === i);
      for (let tries = 1; todo.length > 0; tries++) {
        if (tries > UNIQUE_INSERT_TRIES) throw new Error(`nestjs-pg-queue: unique keys changed holders ${UNIQUE_INSERT_TRIES} times during one addBulk()`);
        const replaced: [number, string][] = [];
        // NOTE: `replace` is one parameter of the statement, so rows go in runs of one setting, in
        // input order (new jobs' ids keep it, and with them the claim order of equal jobs).
        for (const [replace, group] of runsOf(todo, (i) => rows[i].unique?.replace ?? false)) {
          for (const part of chunk(group.map((i) => rows[i]))) {
            const indexes = group.splice(0, part.length);
            const { rows: written } = await queryOnClient<{ id: string; queue: string; unique_key: string | null; unique_slot: string; fresh: boolean; now: number }>(client, this.settings.queryTimeoutMs, 
              this.statements.insertUniqueBatch,
              [`[${batchJson(part, slotOf)}]`, replace],
            );
            const plain = indexes.filter((i) => !rows[i].unique);
            const byKey = new Map(indexes.filter((i) => rows[i].unique).map((i) => [keyOf(rows[i].queue, rows[i].unique!.key, slotOf(rows[i])), i]));
            let nextPlain = 0;
            for (const w of written) {
              const i = w.unique_key === null ? plain[nextPlain++] : byKey.get(keyOf(w.queue, w.unique_key, w.unique_slot))!;
              if (!w.fresh) replaced.push([i, w.id]);
              else jobs.set(i, Object.assign(stamp(toNewJob(rows[i]), w.id, Number(w.now), rows[i].delayMs), rows[i].unique ? { duplicate: false } : {}));
            }
          }
        }
        // Replaced holders, as they are now.
        if (replaced.length > 0) {
          const { rows: found } = await queryOnClient<RawJobRow>(client, this.settings.queryTimeoutMs, this.statements.getByIds, [replaced.map(([, id]) => id)]);
          const byId = new Map(found.map((r) => [String(r.id), r]));
          for (const [i, id] of replaced) jobs.set(i, Object.assign(toJob(byId.get(id)!), { duplicate: true }));
        }
        // The keys held by jobs that took no replacement: their holders.
        const missing = todo.filter((i) => !jobs.has(i));
        if (missing.length > 0) {
          const { rows: holders } = await queryOnClient<RawJobRow & { unique_slot: string }>(client, this.settings.queryTimeoutMs, this.statements.findUniqueHolders, [
            missing.map((i) => rows[i].queue),
            missing.map((i) => rows[i].unique!.key),
            missing.map((i) => slotOf(rows[i])),
          ]);
          const byKey = new Map(missing.map((i) => [keyOf(rows[i].queue, rows[i].unique!.key, slotOf(rows[i])), i]));
          for (const h of holders) jobs.set(byKey.get(keyOf(h.queue, h.unique_key!, h.unique_slot))!, Object.assign(toJob(h), { duplicate: true }));
        }
        todo = missing.filter((i) => !jobs.has(i));
      }
      return rows.map((_, i) => {
        const holder = jobs.get(repIndex(i))!;
        return repIndex(i) === i ? holder : { ...holder, duplicate: true };
      });
    });
  }

  /** Inserts rows by one statement per chunk, all in one transaction. */
  async insertInChunks(chunks: NewJobRow[][]): Promise<Job[]> {
    if (chunks.length <= 1) return this.insert(chunks[0] ?? []);
    return this.inTransaction('insert', async (client) => {
      const jobs: Job[] = [];
      for (const chunk of chunks) {
        const { rows: [inserted] } = await queryOnClient<{ ids: string; now: number }>(client, this.settings.queryTimeoutMs, this.statements.insert, [`[${batchJson(chunk)}]`]);
        jobs.push(...toInsertedJobs(chunk, inserted));
      }
      return jobs;
    });
  }

  /**
   * Inserts any number of rows in one transaction by COPY (see `copyInsert` in the statements),
   * making each row only as it is sent. If making a row throws, the COPY is aborted, nothing is
   * stored, and that error is thrown. Rows given as a delay cannot go this way (`insert` them).
   */
  async insertByCopy(source: CopyRowSource): Promise<Job[]> {
    const wakes = [...source.soonest].map(([queue, runAt]) =>
      this.statements.copyWake(sqlLiteral(queue), runAt === null ? null : sqlLiteral(runAt.toISOString())),
    );
    // NOTE: the rows are kept, and the jobs to return built from them once the server answered.
    // Built while the server works instead (as until 2026-11-29), the job objects lived through the
    // wait and were promoted out of V8's young generation: 4.2 µs of CPU per job for the whole
    // call, 3.0 after, most of the difference in the garbage collector (3 runs of 40 calls of 1,000).
    const rows: NewJobRow[] = new Array(source.count);
    // NOTE: a small first piece, so the server starts inserting soon; then COPY_PIECE_ROWS each.
    const bounds: number[] = [0];
    for (let end = Math.min(COPY_FIRST_PIECE_ROWS, source.count); ; end = Math.min(end + COPY_PIECE_ROWS, source.count)) {
      bounds.push(end);
      if (end === source.count) break;
    }
    const base = source.defaultsOnly ? copyLineOfDefaults : copyLine;
    const unique = source.withUnique ? (r: NewJobRow) => withUniqueColumns(base(r), r) : base;
    const line = source.withGroup ? (r: NewJobRow) => withGroupColumn(unique(r), r) : unique;
    const query = new CopyInQuery(this.statements.copyInsert(source.count, bounds.length - 1, wakes, source.defaultsOnly, source.withUnique ?? false, source.withGroup ?? false), (send, end) => {
      for (let piece = 1; piece < bounds.length; piece++) {
        let text = '';
        for (let i = bounds[piece - 1]; i < bounds[piece]; i++) {
          const row = source.row(i);
          if (row.delayMs !== 0) throw new Error(`nestjs-pg-queue: row ${i} has a delay and cannot be inserted by COPY`);
          if (source.defaultsOnly && !isDueWithDefaults({ ...row, unique: source.withUnique ? null : row.unique, group: source.withGroup ? null : row.group })) throw new Error(`nestjs-pg-queue: row ${i} has options, in a COPY of defaults only`);
          rows[i] = row;
          text += line(row);
        }
        send(text);
        end();
      }
    });
    const [{ floor, last, now, ids }] = await this.submit<CopyInRows>('insert', query, true);
    const createdAt = Number(now);
    let id: (i: number) => string;
    if (ids === null) {
      // Contiguous: floor + 1 … last, in input order (as numbers while they are exact).
      if (Number(last) <= Number.MAX_SAFE_INTEGER) {
        const first = Number(floor) + 1;
        id = (i) => String(first + i);
      } else {
        const first = BigInt(floor!) + 1n;
        id = (i) => String(first + BigInt(i));
      }
    } else {
      const found = ids.split(',');
      if (found.length !== source.count) {
        // NOTE: typed like every error a caller of the queue gets (it would be a bug of ours).
        throw translateDatabaseError('insert', new Error(`nestjs-pg-queue: COPY inserted ${source.count} jobs but ${found.length} were found between ids ${floor} and ${last}`));
      }
      id = (i) => found[i];
    }
    return rows.map((row, i) => stamp(toNewJob(row), id(i), createdAt, 0));
  }

  async claim(queue: string, limit: number, workerId: string, lockDurationMs: number, defaults: ClaimDefaults): Promise<Job[]> {
    const traced = this.settings.traceContext === true;
    const result = await this.runClaim(traced ? this.statements.claimTraced : this.statements.claim, queue, limit, workerId, lockDurationMs, defaults);
    if (result.rows.length === 0) return [];
    return this.toClaimedJobs(result.rows as unknown[][], queue, workerId, lockDurationMs, defaults, traced);
  }

  /**
   * `claim` for a queue with limits (see `claimLimited` in the statements): the jobs, and what the
   * limits say about the next claim.
   */
  async claimLimited(queue: string, limit: number, workerId: string, lockDurationMs: number, defaults: ClaimDefaults): Promise<LimitedClaim> {
    const traced = this.settings.traceContext === true;
    const result = await this.runClaim(traced ? this.statements.claimLimitedTraced : this.statements.claimLimited, queue, limit, workerId, lockDurationMs, defaults);
    return this.toLimitedClaim(result.rows as unknown[][], 0, queue, workerId, lockDurationMs, defaults, traced);
  }

  /**
   * Completes attempts of a limited queue (`completed` outcomes only, fenced like `finish`) and
   * then claims, in one statement and one transaction: `claimLimited`, plus the ids written.
   */
  async completeAndClaimLimited(
    completed: AttemptOutcome[],
    queue: string,
    limit: number,
    workerId: string,
    lockDurationMs: number,
    defaults: ClaimDefaults,
  ): Promise<LimitedClaim & { written: Set<string> }> {
    const traced = this.settings.traceContext === true;
    const [ids, claims, results] = completeParams(completed, workerId);
    const text = traced ? this.statements.completeAndClaimLimitedTraced : this.statements.completeAndClaimLimited;
    const rows = (await this.runClaim(text, queue, limit, workerId, lockDurationMs, defaults, [ids, claims, results])).rows as unknown[][];
    // NOTE: the ids written are the last row's last column, after the hints.
    const written = rows[rows.length - 1][rows[rows.length - 1].length - 1] as string | null;
    const claim = this.toLimitedClaim(rows, 1, queue, workerId, lockDurationMs, defaults, traced);
    return { ...claim, written: new Set(written ? written.split(',') : []) };
  }

  /**
   * A limited claim's rows: a row per job, then one last row without a job whose five hint
   * columns come `after` columns before its end.
   */
  private toLimitedClaim(rows: unknown[][], after: number, queue: string, workerId: string, lockDurationMs: number, defaults: ClaimDefaults, traced: boolean): LimitedClaim {
    const hints = rows.pop()!;
    const end = hints.length - after;
    return {
      jobs: rows.length === 0 ? [] : this.toClaimedJobs(rows, queue, workerId, lockDurationMs, defaults, traced),
      waitMs: hints[end - 5] as number | null,
      more: hints[end - 4] as boolean,
      limited: hints[end - 3] as boolean,
      full: hints[end - 2] as boolean,
      permits: hints[end - 1] as boolean,
    };
  }

  /**
   * Completes attempts of a queue whose only limit is global concurrency (`completed` outcomes
   * only, fenced like `finish`) and claims within this worker's permit, in one statement (see
   * `completeAndClaimPermitted` in the statements).
   */
  async completeAndClaimPermitted(
    completed: AttemptOutcome[],
    queue: string,
    limit: number,
    workerId: string,
    lockDurationMs: number,
    defaults: ClaimDefaults,
  ): Promise<PermittedClaim> {
    const traced = this.settings.traceContext === true;
    const text = traced ? this.statements.completeAndClaimPermittedTraced : this.statements.completeAndClaimPermitted;
    const rows = (await this.runClaim(text, queue, limit, workerId, lockDurationMs, defaults, completeParams(completed, workerId).slice(0, 3))).rows as unknown[][];
    // NOTE: the row without a job carries the permit, the block and the ids written, last.
    const at = rows.findIndex((row) => row[0] === null);
    const [hint] = rows.splice(at, 1);
    const width = hint.length;
    const written = hint[width - 1] as string | null;
    return {
      jobs: rows.length === 0 ? [] : this.toClaimedJobs(rows, queue, workerId, lockDurationMs, defaults, traced),
      slots: hint[width - 3] as number | null,
      waitMs: hint[width - 2] as number | null,
      written: new Set(written ? written.split(',') : []),
    };
  }

  /** This worker's share of the global concurrency of `queue` (see the permit function of schema step 5). */
  async acquirePermit(queue: string, workerId: string, wants: number, lockDurationMs: number): Promise<Permit> {
    const [row] = await this.run<Permit>('claim', this.statements.acquirePermit, [queue, workerId, wants, lockDurationMs], undefined, true, this.ownPool);
    return row;
  }

  /** Gives up the permit of `workerId` for `queue` (graceful shutdown; else it lapses). */
  async releasePermit(queue: string, workerId: string): Promise<void> {
    await this.run('claim', this.statements.releasePermit, [queue, workerId], undefined, true, this.ownPool);
  }

  /** Runs one of the claim statements (same parameters, rows as arrays) on the worker's pool. */
  private runClaim(text: string, queue: string, limit: number, workerId: string, lockDurationMs: number, defaults: ClaimDefaults, more: unknown[] = [], prepared = true): Promise<QueryResult> {
    const values = [queue, limit, workerId, lockDurationMs, defaults.maxAttempts, JSON.stringify(defaults.backoff), defaults.timeoutMs, ...more];
    return this.execute('claim', text, values, prepared, 'array', this.ownPool);
  }

  private toClaimedJobs(rows: unknown[][], queue: string, workerId: string, lockDurationMs: number, defaults: ClaimDefaults, traced: boolean): Job[] {
    const context: ClaimContext = {
      queue,
      workerId,
      lockDurationMs,
      maxAttempts: defaults.maxAttempts,
      backoff: JSON.parse(JSON.stringify(defaults.backoff)) as BackoffOptions,
      timeoutMs: defaults.timeoutMs,
    };
    const jobs = rows.map((values) => toClaimedJob(values, context));
    if (traced) {
      rows.forEach((values, i) => {
        // NOTE: the trace context follows the claimed columns (`claimTraced`, `claimLimitedTraced`).
        const trace = values[CLAIMED_COLUMN_COUNT];
        if (trace !== null) claimedTraceContexts.set(jobs[i], trace as Record<string, string>);
      });
    }
    return inClaimOrder(jobs);
  }

  /**
   * Writes outcomes; returns the ids actually written (the others were fenced out). Completions go
   * through the lean `complete` statement, everything else through `finish`; both run at once.
   * Unnamed statements: see `execute`.
   */
  async finish(outcomes: AttemptOutcome[], workerId: string, manager?: EntityManager): Promise<Set<string>> {
    const completed = outcomes.filter((o) => o.state === 'completed');
    const others = completed.length === outcomes.length ? [] : outcomes.filter((o) => o.state !== 'completed');
    const writes: Promise<{ ids: string | null }[]>[] = [];
    if (completed.length > 0) {
      writes.push(
        this.run('finish', this.statements.complete, completeParams(completed, workerId), manager, false, this.ownPool),
      );
    }
    if (others.length > 0) {
      writes.push(
        this.run(
          'finish',
          this.statements.finish,
          [
            others.map((o) => o.id),
            others.map((o) => o.claim),
            others.map((o) => o.state),
            others.map((o) => o.result),
            others.map((o) => o.error),
            others.map((o) => o.delayMs),
            others.map((o) => (o.refund ? (o.rateLimited === 'keepPlace' ? 2 : 1) : 0)),
            workerId,
          ],
          manager,
          false,
          this.ownPool,
        ),
      );
    }
    const written = new Set<string>();
    for (const [row] of await Promise.all(writes)) for (const id of row?.ids ? row.ids.split(',') : []) written.add(id);
    return written;
  }

  /**
   * Renews leases; returns, by job id, the claim this worker still holds, and the claim that was
   * cancelled while it ran it (every other (id, claim) lost its lease). One job has one claim in
   * the table, so at most one of the attempts of one id that run here can match.
   */
  async heartbeat(
    jobs: { id: string; claim: number }[],
    workerId: string,
    lockDurationMs: number,
  ): Promise<{ held: Map<string, number>; cancelled: Map<string, number> }> {
    const rows = await this.run<{ id: string; claims: number; state: JobState }>('heartbeat', this.statements.heartbeat, [
      jobs.map((j) => j.id),
      jobs.map((j) => j.claim),
      workerId,
      lockDurationMs,
    ], undefined, false, this.ownPool);
    const held = new Map<string, number>();
    const cancelled = new Map<string, number>();
    for (const row of rows) (row.state === 'cancelled' ? cancelled : held).set(String(row.id), row.claims);
    return { held, cancelled };
  }

  /** Rescues up to `limit` jobs whose lease lapsed, in every queue. */
  async rescueExpired(limit: number): Promise<RescuedJob[]> {
    return this.run('rescue', this.statements.rescue, [limit], undefined, true, this.ownPool);
  }

  /**
   * Hands back a claimed job this worker has no handler for (see `handBackUnknown` in the
   * statements): 'pending' (due again in `retryInMs`), 'failed' (unknown for `graceMs` already), or
   * null when this worker no longer held the lease.
   */
  async handBackUnknown(
    job: { id: string; claim: number },
    workerId: string,
    graceMs: number,
    retryInMs: number,
    errorJson: string,
  ): Promise<'pending' | 'failed' | null> {
    const [row] = await this.run<{ state: 'pending' | 'failed' }>('finish', this.statements.handBackUnknown, [
      job.id,
      job.claim,
      workerId,
      graceMs,
      retryInMs,
      errorJson,
    ], undefined, true, this.ownPool);
    return row?.state ?? null;
  }

  /** Which of `queues` have a due pending job, and whether each has limits (see `dueQueues`). */
  async findQueuesWithDueJobs(queues: string[]): Promise<{ queue: string; limited: boolean }[]> {
    return this.run<{ queue: string; limited: boolean }>('poll', this.statements.dueQueues, [queues], undefined, true, this.ownPool);
  }

  /**
   * Cancels the job and its flow's unfinished descendants; returns the job, or null when it was not
   * cancelled. With `logFlowEvents`, also what the flow trigger did to dependents (see `withFlowLog`).
   */
  async cancel(
    id: string,
    logFlowEvents = false,
  ): Promise<{ job: (Job & { previousState: JobState }) | null; descendants: Job[]; flowEvents: FlowLogEvent[] }> {
    let result: { rows: (RawJobRow & { prev_state: JobState; root: boolean })[]; flowEvents: FlowLogEvent[] };
    for (let tries = 1; ; tries++) {
      try {
        result = await this.withFlowLog('cancel', this.statements.cancel, [id], logFlowEvents);
        break;
      } catch (error) {
        // NOTE: cancelling a flow locks it from the root down, while a child's completion holds the
        // child and then locks its parent (the flow trigger): the two can deadlock. PostgreSQL
        // aborts one of them; the completion is retried by the completer, the cancel here.
        if (tries >= CANCEL_TRIES || !isDeadlock(error)) throw error;
      }
    }
    const row = result.rows.find((r) => r.root);
    // The unfinished descendants of a flow's job, cancelled with it.
    const descendants = result.rows.filter((r) => !r.root).map((r) => toJob(r));
    return { job: row ? { ...toJob(row), previousState: row.prev_state } : null, descendants, flowEvents: result.flowEvents };
  }

  /**
   * Runs one statement, with `log` in a transaction that logs the flow trigger's events and reads
   * them back before it commits (three more round trips: only when someone listens to them).
   */
  private async withFlowLog<Row>(operation: string, text: string, values: unknown[], log: boolean): Promise<{ rows: Row[]; flowEvents: FlowLogEvent[] }> {
    if (!log) return { rows: await this.run<Row>(operation, text, values), flowEvents: [] };
    const timeout = this.settings.queryTimeoutMs;
    return this.inTransaction(operation, async (client) => {
      await queryOnClient(client, timeout, this.statements.startFlowLog);
      const { rows } = await queryOnClient<Row & object>(client, timeout, text, values);
      const { rows: [{ log: logged }] } = await queryOnClient<{ log: string }>(client, timeout, this.statements.readFlowLog);
      return { rows, flowEvents: JSON.parse(`${logged.replace(/,$/, '')}]`) as FlowLogEvent[] };
    });
  }

  /** Retries the job (see `retry` in the statements); with `logFlowEvents`, also what the flow trigger did to dependents. */
  async retry(id: string, logFlowEvents = false): Promise<{ job: Job | null; flowEvents: FlowLogEvent[] }> {
    let result: { rows: RawJobRow[]; flowEvents: FlowLogEvent[] };
    try {
      result = await this.withFlowLog<RawJobRow>('retry', this.statements.retry, [id], logFlowEvents);
    } catch (error) {
      // NOTE: back to pending, a job holds its unique key again (see schema step 4); the unique
      // index refuses that while another job holds the key.
      if (!isUniqueViolation(error)) throw error;
      const job = await this.findById(id);
      const [holder] = job?.uniqueKey ? await this.run<RawJobRow>('retry', this.statements.findUniqueHolders, [[job.queue], [job.uniqueKey], [0]]) : [];
      if (job?.uniqueKey && holder) throw new UniqueKeyHeldError(id, job.uniqueKey, holder.id);
      throw error;
    }
    return { job: result.rows[0] ? toJob(result.rows[0]) : null, flowEvents: result.flowEvents };
  }

  async findById<T, R>(id: string): Promise<Job<T, R> | null> {
    const [row] = await this.run<RawJobRow>('getJob', this.statements.getById, [id]);
    return row ? toJob<T, R>(row) : null;
  }

  /** Jobs of a queue and/or name (any when undefined), `limit` of them, in id order. */
  async list<T, R>(filter: { queue?: string; name?: string; limit: number; newestFirst: boolean }): Promise<Job<T, R>[]> {
    const text = filter.newestFirst ? this.statements.listNewestFirst : this.statements.listOldestFirst;
    const rows = await this.run<RawJobRow>('getJobs', text, [filter.queue ?? null, filter.name ?? null, filter.limit]);
    return rows.map((row) => toJob<T, R>(row));
  }

  /** Deletes every job of the table (the testing helpers' clear()); returns how many. */
  async deleteAll(): Promise<number> {
    return (await this.execute('clear', this.statements.deleteAll, [])).rowCount ?? 0;
  }

  async countByState(queue?: string): Promise<JobCounts> {
    const rows =
      queue === undefined
        ? await this.run<{ state: JobState; n: number }>('getCounts', this.statements.countAll, [])
        : await this.run<{ state: JobState; n: number }>('getCounts', this.statements.countQueue, [queue]);
    const counts: JobCounts = { pending: 0, active: 0, completed: 0, failed: 0, cancelled: 0, blocked: 0 };
    for (const { state, n } of rows) counts[state] = n;
    return counts;
  }

  /** Deletes up to `limit` finished jobs older than `ageMs`; returns how many. */
  async deleteFinished(ageMs: number, limit: number): Promise<number> {
    const result = await this.execute('retention', this.statements.deleteFinished, [ageMs, limit], true, undefined, this.ownPool);
    return result.rowCount ?? 0;
  }

  /**
   * Creates or upgrades the job table. The version sits in a constraint comment and is read first
   * without any lock, so nodes that start against an up-to-date table take no DDL lock at all.
   * NOTE: the reads are bounded; the advisory lock (another node may be migrating) and the schema
   * steps (an index on a big table may take minutes) are not.
   */
  async migrate(): Promise<void> {
    if ((await this.schemaVersion()) >= LATEST_SCHEMA_VERSION) return;
    await this.inTransaction('migration', async (client) => {
      await client.query(this.statements.migrationLock, [`nestjs-pg-queue:${this.naming.qualified}`]);
      const current = await this.readSchemaVersion(client);
      for (const step of SCHEMA_STEPS) {
        if (step.version <= current) continue;
        for (const sql of step.up(this.naming)) await client.query(sql);
      }
      await client.query(writeSchemaVersion(this.naming, LATEST_SCHEMA_VERSION));
    });
  }

  /** The table's schema version (0 when there is no table), read without any lock. */
  async schemaVersion(): Promise<number> {
    const result = await queryBounded(this.pool, 'migration', this.settings.queryTimeoutMs, {
      text: this.statements.readSchemaVersion,
      values: [this.naming.qualified, schemaVersionConstraints(this.naming)],
    });
    return parseSchemaVersion(result.rows[0]?.comment ?? null);
  }

  /** `schemaVersion`, on the migration's own client (inside its transaction). */
  private async readSchemaVersion(client: PoolClient): Promise<number> {
    const result = await queryOnClient<{ comment: string | null }>(client, this.settings.queryTimeoutMs, this.statements.readSchemaVersion, [
      this.naming.qualified,
      schemaVersionConstraints(this.naming),
    ]);
    return parseSchemaVersion(result.rows[0]?.comment ?? null);
  }

  /**
   * Runs one of our own submittables (a COPY script, a single-value statement) on a pooled client
   * within the bound, the way `pool.query` runs a statement (callbacks, no promise until the end).
   * With `byProgress` (a COPY), the bound restarts whenever the server acknowledges a piece.
   * NOTE: the query's callback is set here rather than left to `pool.query`: node-postgres before
   * 8.23 ignores the callback pg-pool passes along with a submittable, so the query never settled.
   */
  private submit<T>(
    operation: string,
    query: { callback?: (error: Error | null, result?: T) => void; onProgress?: () => void },
    byProgress = false,
  ): Promise<T> {
    return runBounded<T>(this.pool, operation, this.settings.queryTimeoutMs, (client, finish, progress) => {
      // NOTE: a query settles once only, whatever it reports after its first outcome (finish
      // ignores the rest).
      query.callback = finish;
      if (byProgress) query.onProgress = progress;
      client.query(query as unknown as QueryConfig);
      // NOTE: a COPY's rows are made and sent synchronously by client.query (see CopyInQuery):
      // the wait for the server starts now.
      if (byProgress) progress();
    });
  }

  /**
   * Runs `work` in a transaction for another part of the database layer (the schedules), on the
   * worker's pool when `workerPool` (the schedule enqueuer) else the app's; `query` runs one bounded
   * statement in it. Committed if `work` returns, else rolled back.
   */
  runTransaction<T>(operation: string, work: (query: <Row>(text: string, values: unknown[]) => Promise<Row[]>) => Promise<T>, workerPool = false): Promise<T> {
    const { queryTimeoutMs } = this.settings;
    return this.inTransaction(
      operation,
      (client) => work(async <Row>(text: string, values: unknown[]) => (await queryOnClient(client, queryTimeoutMs, text, values)).rows as Row[]),
      workerPool ? this.ownPool : this.pool,
    );
  }

  /**
   * Runs `work` in a transaction on a client of its own (committed if it returns, else rolled back).
   * Also for other parts of the database layer (the job management API's statement-timeout transactions).
   */
  inTransaction<T>(operation: string, work: (client: PoolClient) => Promise<T>, pool = this.pool): Promise<T> {
    const { queryTimeoutMs } = this.settings;
    return this.withClient(operation, async (client) => {
      await queryOnClient(client, queryTimeoutMs, 'BEGIN');
      try {
        const result = await work(client);
        await queryOnClient(client, queryTimeoutMs, 'COMMIT');
        return result;
      } catch (error) {
        await queryOnClient(client, queryTimeoutMs, 'ROLLBACK').catch(() => undefined);
        throw error;
      }
    }, pool);
  }

  /** Runs `work` on a client of its own from `pool` (the app's by default; acquired within the bound); errors leave it translated. */
  private async withClient<T>(operation: string, work: (client: PoolClient) => Promise<T>, pool = this.pool): Promise<T> {
    let client: PoolClient;
    try {
      client = await acquireBounded(pool, this.settings.queryTimeoutMs);
    } catch (error) {
      throw translateDatabaseError(operation, error);
    }
    const giveBack = checkOut(client);
    let failure: unknown;
    try {
      return await work(client);
    } catch (error) {
      failure = error;
      throw translateDatabaseError(operation, error);
    } finally {
      giveBack(failure);
    }
  }

  /**
   * Runs one statement of another part of the database layer (the queue registry, flows, ...) on
   * the app's pool; in `via`'s transaction when it is an EntityManager; with `'worker'` on the
   * worker's own pool (once open), as the worker's own statements run.
   */
  runStatement<Row>(operation: string, text: string, values: unknown[], via?: EntityManager | 'worker'): Promise<Row[]> {
    if (via === 'worker') return this.run<Row>(operation, text, values, undefined, true, this.ownPool);
    return this.run<Row>(operation, text, values, via);
  }

  /**
   * `runStatement`, on the worker's own pool (once open): for the worker's writes of another part
   * of the database layer (progress, logs, the schedule enqueuer, the worker registry, rollups), which must not wait behind the app's queries.
   */
  runWorkerStatement<Row>(operation: string, text: string, values: unknown[], prepared = true): Promise<Row[]> {
    return this.run<Row>(operation, text, values, undefined, prepared, this.ownPool);
  }

  /**
   * Runs a parameterless script of several statements on the app's pool, in one round trip (the
   * simple query protocol: one implicit transaction, so `SET LOCAL` holds for the statements after
   * it); returns the rows of the last statement.
   */
  async runScript<Row>(operation: string, text: string): Promise<Row[]> {
    const result = (await queryBounded(this.pool, operation, this.settings.queryTimeoutMs, { text })) as QueryResult | QueryResult[];
    return (Array.isArray(result) ? result[result.length - 1] : result).rows as Row[];
  }

  private async run<Row>(operation: string, text: string, values: unknown[], manager?: EntityManager, prepared = true, pool = this.pool): Promise<Row[]> {
    if (manager) {
      try {
        return (await manager.query(text, values)) as Row[];
      } catch (error) {
        throw translateDatabaseError(operation, error);
      }
    }
    return (await this.execute(operation, text, values, prepared, undefined, pool)).rows as Row[];
  }

  /** Runs a statement on the app's pool that returns one text value (see {@link SingleValueQuery}). */
  private async value(operation: string, text: string, values: (string | null)[]): Promise<string> {
    const value = await this.optionalValue(operation, text, values);
    if (value === null) throw translateDatabaseError(operation, new Error(`nestjs-pg-queue: the ${operation} statement returned no value`));
    return value;
  }

  /** `value`, for a statement that may return no row (null). */
  private optionalValue(operation: string, text: string, values: (string | null)[]): Promise<string | null> {
    const name = this.settings.preparedStatements ? this.statementName(text) : '';
    return this.submit<string | null>(operation, new SingleValueQuery(name, text, values));
  }

  /**
   * Runs a statement on `pool` (the app's by default) within the bound. Prepared (named) by default,
   * unless `preparedStatements` is off: parsed once per connection. Not for
   * statements whose batch arrays vary widely in size (finish, heartbeat): after five runs
   * PostgreSQL may switch a prepared statement to a generic plan, and for those the generic plan
   * joins the batch against every active row of the worker — measured at 13 ms instead of 1.3 ms
   * for 200 outcomes. Unnamed, they get a plan for their actual size every time.
   */
  private execute(operation: string, text: string, values: unknown[], prepared = true, rowMode?: 'array', pool = this.pool): Promise<QueryResult> {
    const query: QueryConfig & { rowMode?: 'array' } =
      prepared && this.settings.preparedStatements ? { name: this.statementName(text), text, values, rowMode } : { text, values, rowMode };
    return queryBounded(pool, operation, this.settings.queryTimeoutMs, query);
  }

  /** A stable prepared-statement name per statement text (one per table and operation). */
  private statementName(text: string): string {
    let name = this.names.get(text);
    if (!name) {
      name = `pgq_${createHash('sha1').update(text).digest('hex').slice(0, 20)}`;
      this.names.set(text, name);
    }
    return name;
  }
}

/** `items` cut into runs of consecutive items with the same `key`, in order. */
function runsOf<T, K>(items: T[], key: (item: T) => K): [K, T[]][] {
  const runs: [K, T[]][] = [];
  for (const item of items) {
    const k = key(item);
    const last = runs[runs.length - 1];
    if (last && last[0] === k) last[1].push(item);
    else runs.push([k, [item]]);
  }
  return runs;
}

/** The rows of a batch insert as one JSON array's elements. `data` and `backoff` are JSON texts
 * already (validated): spliced in, not stringified again. */
function batchJson(rows: NewJobRow[], slot?: (row: NewJobRow) => string): string {
  return rows
    .map(
      (r) =>
        `{${jobJsonFields(r)}` +
        (slot && r.unique ? `,"unique_key":${JSON.stringify(r.unique.key)},"unique_hold":"${r.unique.hold}","unique_slot":${r.unique.hold === 'window' ? slot(r) : 'null'}}` : '}'),
    )
    .join(',');
}

/** A row's fields as the members of a JSON object (no braces), for the batch statements' JSON arrays. */
export function jobJsonFields(r: NewJobRow): string {
  return (
    `"queue":${JSON.stringify(r.queue)},"name":${JSON.stringify(r.name)},"data":${r.data},"priority":${r.priority},` +
    `"run_at":${r.runAt ? `"${r.runAt.toISOString()}"` : 'null'},"delay_ms":${r.delayMs},"max_attempts":${r.maxAttempts},` +
    `"backoff":${r.backoff ?? 'null'},"timeout_ms":${r.timeoutMs}` +
    // NOTE: the group and the trace context only when set: a row without them leaves the keys out (read as NULL).
    (r.group === null ? '' : `,"group_key":${JSON.stringify(r.group)}`) +
    (r.traceContext === undefined ? '' : `,"trace_context":${r.traceContext}`)
  );
}

/**
 * Watches a client just taken from the pool; returns the function that gives it back, told the
 * error its work ended with, if any.
 * NOTE: a checked-out client that loses its connection emits 'error' (besides failing its query);
 * unheard, that event would crash the process, so it is heard and ignored: the query's error is
 * what gets reported. A statement error (or an aborted COPY) leaves the connection usable; pg-pool
 * destroys a client handed an error, which is right only when the connection itself failed (or a
 * statement timed out on it: see `queryOnClient`).
 */
function checkOut(client: PoolClient): (failure?: unknown) => void {
  const ignore = () => undefined;
  client.on('error', ignore);
  return (failure) => {
    const failed = failure !== undefined && isConnectionError(failure);
    if (!failed) client.off('error', ignore);
    client.release(failed ? (failure as Error) : undefined);
  };
}

/** TypeORM's pg pool, with what pg-pool keeps that the types do not show. */
type AppPool = Pool & { options: PoolConfig; Client: new (options: PoolConfig) => PoolClient };

/**
 * The `complete` statement's parameters. Ids and claims go as array literals built here (ids are
 * digit strings, claims integers: nothing to escape), which spares node-postgres quoting every
 * element; results go as NULL when all are null (no-result handlers), which `unnest` reads as a
 * column of NULLs.
 */
function completeParams(completed: AttemptOutcome[], workerId: string): unknown[] {
  let ids = '';
  let claims = '';
  let anyResult = false;
  for (let i = 0; i < completed.length; i++) {
    const o = completed[i];
    ids += i === 0 ? o.id : `,${o.id}`;
    claims += i === 0 ? String(o.claim) : `,${o.claim}`;
    if (o.result !== null && o.result !== 'null') anyResult = true;
  }
  return [`{${ids}}`, `{${claims}}`, anyResult ? completed.map((o) => o.result) : null, workerId];
}

/**
 * A job as inserted: what was sent, read back through JSON so `data` is what is stored (a Date
 * becomes its ISO string); `stamp` then adds what the database decided.
 */
function toNewJob(row: NewJobRow): Job {
  return {
    id: '',
    queue: row.queue,
    name: row.name,
    data: JSON.parse(row.data),
    state: JobState.Pending,
    attempts: 0,
    claims: 0,
    maxAttempts: row.maxAttempts,
    priority: row.priority,
    runAt: row.runAt,
    backoff: row.backoff === null ? null : JSON.parse(row.backoff),
    timeoutMs: row.timeoutMs,
    createdAt: null,
    startedAt: null,
    finishedAt: null,
    result: null,
    lastError: null,
    uniqueKey: row.unique?.key ?? null,
    group: row.group,
    scheduledFor: null,
    scheduleKey: null,
    lockedBy: null,
    lockedUntil: null,
    parentId: null,
    progress: null,
  } as unknown as Job;
}

/**
 * Adds the id and the creation time (epoch ms, the inserting transaction's `now()`), and the run
 * time of a job given as a delay (`runAt` still null).
 */
function stamp(job: Job, id: string, createdAt: number, delayMs: number): Job {
  job.id = id;
  job.createdAt = new Date(createdAt);
  job.runAt ??= new Date(createdAt + delayMs);
  return job;
}

/** The jobs of an `insert` statement's rows, from its result (ids in input order, `now()`). */
function toInsertedJobs(rows: NewJobRow[], inserted: { ids: string; now: number }): Job[] {
  const ids = inserted.ids.split(',');
  return rows.map((row, i) => stamp(toNewJob(row), ids[i], inserted.now, row.delayMs));
}

/**
 * One row in COPY's text format: tab-separated, `\\N` for NULL, backslashes doubled. Nothing else
 * needs escaping: names are validated free of control characters, and JSON text has none (JSON
 * escapes them), so no row can contain a tab, a newline or a lone `\\.`. `run_at` is an ISO time
 * or `now`, which PostgreSQL reads as the transaction's start, like `now()`.
 */
function copyLine(r: NewJobRow): string {
  return (
    `${copyValue(r.queue)}\t${copyValue(r.name)}\t${copyValue(r.data)}\t${r.priority}\t${r.runAt ? r.runAt.toISOString() : 'now'}\t` +
    `${r.maxAttempts ?? '\\N'}\t${r.backoff === null ? '\\N' : copyValue(r.backoff)}\t${r.timeoutMs ?? '\\N'}\n`
  );
}

/** A COPY line with the unique key and its hold ('finish' or 'start') appended (see `CopyRowSource.withUnique`). */
function withUniqueColumns(line: string, r: NewJobRow): string {
  return `${line.slice(0, -1)}\t${r.unique ? `${copyFreeText(r.unique.key)}\t${r.unique.hold}` : '\\N\t\\N'}\n`;
}

/** A COPY line with the group appended (see `CopyRowSource.withGroup`). */
function withGroupColumn(line: string, r: NewJobRow): string {
  return `${line.slice(0, -1)}\t${r.group === null ? '\\N' : copyFreeText(r.group)}\n`;
}

/** Any text in COPY's text format: unlike names and JSON, a unique key (or a group) may hold tabs and line breaks. */
function copyFreeText(text: string): string {
  return text.replace(/[\\\t\n\r]/g, (c) => (c === '\\' ? '\\\\' : c === '\t' ? '\\t' : c === '\n' ? '\\n' : '\\r'));
}

/** `copyLine` for the COPY of queue, name and data only (see `CopyRowSource.defaultsOnly`). */
function copyLineOfDefaults(r: NewJobRow): string {
  return `${copyValue(r.queue)}\t${copyValue(r.name)}\t${copyValue(r.data)}\n`;
}

function copyValue(text: string): string {
  return text.includes('\\') ? text.replace(/\\/g, '\\\\') : text;
}

/** A string as an SQL literal (standard_conforming_strings on, PostgreSQL's default since 9.1, or off). */
function sqlLiteral(text: string): string {
  const quoted = text.replace(/'/g, "''");
  return text.includes('\\') ? `E'${quoted.replace(/\\/g, '\\\\')}'` : `'${quoted}'`;
}

/** Whether a row leaves every option to the table's defaults (see `insertOneDue`). */
function isDueWithDefaults(r: NewJobRow): boolean {
  return r.priority === 0 && r.runAt === null && r.delayMs <= 0 && r.maxAttempts === null && r.backoff === null && r.timeoutMs === null && r.unique === null && r.group === null;
}

/** `insertOne`'s parameters, as text (a `SingleValueQuery` sends them as they are). */
function oneRowParams(r: NewJobRow): (string | null)[] {
  const text = (n: number | null) => (n === null ? null : String(n));
  return [r.queue, r.name, r.data, String(r.priority), r.runAt?.toISOString() ?? null, String(r.delayMs), text(r.maxAttempts), r.backoff, text(r.timeoutMs)];
}
