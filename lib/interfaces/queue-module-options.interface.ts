import type { ModuleMetadata, InjectionToken, OptionalFactoryDependency } from '@nestjs/common';
import type { DataSource } from 'typeorm';
import type { DefaultJobOptions } from './job-options.interface';
import type { HealthOptions, MetricsOptions, StatsOptions } from './observability.interface';

/** Settings of the worker that runs this process's processors. */
export interface WorkerOptions {
  /**
   * How often an idle queue looks for due jobs when no notification arrives (ms). It is the only way
   * jobs are found with `listen: false`, and it bounds how late a delayed job can start. Default 1000.
   */
  pollIntervalMs?: number;
  /**
   * Length of the lease a worker holds on a claimed job (ms). Heartbeats renew it every third of it;
   * a job whose lease lapses (its process died or froze) is rescued by any live worker. Default 30000.
   */
  lockDurationMs?: number;
  /**
   * How long `app.close()` lets running jobs finish before aborting them (ms). An aborted job whose
   * handler returns within a second is handed back to pending without counting the attempt; one
   * whose handler still runs keeps its lease (no longer renewed) and is rescued when it lapses, with
   * the attempt counted. `app.close()` returns within about this plus 4 s. Default 10000.
   */
  shutdownTimeoutMs?: number;
  /**
   * LISTEN for new-job and cancellation notifications on one dedicated connection. Set false behind
   * PgBouncer in transaction mode: the worker then polls only. Default true.
   */
  listen?: boolean;
  /**
   * How long a job whose name this worker has no handler for (a rolling deploy: only the new
   * version knows it) is handed back to pending, without counting an attempt, for a worker that
   * knows it, before it is failed with `MissingHandlerError` (ms, counted from the first hand-back).
   * `0` fails such a job at once. Queues with a catch-all `@Handle()` never see it. Default 600000.
   */
  unknownJobGraceMs?: number;
  /**
   * Size of the worker's own connection pool, for its claims, heartbeats, outcome writes, rescues
   * and retention: they never wait behind the application's queries on TypeORM's pool. It is made
   * with the settings of TypeORM's pool (host, user, TLS, …) and ended at shutdown. Default 5: a
   * claim, both outcome statements, a heartbeat and a rescue can all be in flight at once.
   */
  poolSize?: number;
  /**
   * Claim ahead: a queue whose handlers are quick next to a claim's round trip claims a few jobs
   * beyond its free slots into a small local buffer, so the next claim is in flight while its slots
   * run them. Sized per queue from measurement, so that a buffered job waits about one claim round
   * trip; a queue whose handlers are slow gets no buffer. Buffered jobs are claimed rows (active,
   * leased to this worker, renewed by heartbeats); they are handed back to pending with the attempt
   * refunded at shutdown, when the queue is paused, or when the oldest has waited `maxWaitMs` for a
   * slot, and dropped unrun when cancelled. `concurrency` still bounds the handlers running at once.
   * `false` claims only for free slots. Default `{ maxWaitMs: 250 }`.
   */
  claimAhead?: false | { maxWaitMs?: number };
}

/** Options of `QueueModule.forRoot()`. */
export interface QueueModuleOptions {
  /**
   * The TypeORM `DataSource` to use: an instance, or the name of a `@nestjs/typeorm` connection.
   * Default: the app's default `@nestjs/typeorm` connection.
   */
  dataSource?: DataSource | string;
  /** PostgreSQL schema of the job table (a plain lower-case identifier). Default `public`. */
  schema?: string;
  /** Name of the job table (a plain lower-case identifier). Default `queue_jobs`. */
  tableName?: string;
  /**
   * Create or upgrade the job table at startup (idempotent, serialised with an advisory lock so many
   * nodes can start at once). Set false when the app runs the exported migrations itself. Default true.
   */
  migrationsRun?: boolean;
  /** Defaults for every job; processors and jobs override them. */
  defaultJobOptions?: DefaultJobOptions;
  /** `false` for a producer-only process (it enqueues but runs no processor). Default: a worker. */
  worker?: WorkerOptions | false;
  /**
   * Delete `completed`, `failed` and `cancelled` jobs whose `finishedAt` is older than this (ms).
   * Checked by workers about once a minute. Default: keep them.
   */
  retentionMs?: number;
  /**
   * Bound of every statement of the library (ms), from asking the pool for a connection to the
   * answer: past it the call fails with `QueueUnavailableError` and the connection is destroyed (its
   * state is unknown). A bulk COPY is bounded by progress instead: it fails when the server has
   * acknowledged nothing for this long. The schema migration at boot is not bounded. Default 5000.
   */
  queryTimeoutMs?: number;
  /**
   * Use named prepared statements (parsed once per connection). Set false behind PgBouncer in
   * transaction mode (before 1.21, or without `max_prepared_statements`): every statement is then
   * sent unnamed. Default true.
   */
  preparedStatements?: boolean;
  /**
   * Per-minute rollups of outcomes and timings per queue and job name (`QueueService.getStats()`),
   * accumulated by each worker in memory and written at most once per `flushIntervalMs`. `false`
   * turns them off. Default on, kept 14 days.
   */
  stats?: StatsOptions | false;
  /**
   * Prometheus metrics on a prom-client registry (`prom-client` must be installed: an optional peer
   * dependency, loaded only when this is set). Default: none.
   */
  metrics?: MetricsOptions;
  /** Settings of the health check that `QueueHealthIndicator` (`nestjs-pg-queue/terminus`) reports. */
  health?: HealthOptions;
  /**
   * OpenTelemetry spans (`@opentelemetry/api` must be installed: an optional peer dependency,
   * loaded only when this is true): a producer span per add()/addBulk(), a consumer span per
   * attempt in the producer's trace. Without an SDK the spans are no-ops. Default false.
   */
  tracing?: boolean;
  /**
   * `statement_timeout` of the job management API's queries (`listJobs()`, the single and bulk
   * actions: each bulk batch): set with `SET LOCAL` in the query's own transaction, so the
   * database cancels a listing or batch that runs longer (`AdminQueryTimeoutError`) instead of a
   * dashboard keeping a backend busy. Default 3000.
   */
  adminQueryTimeoutMs?: number;
}

/** A class that builds the options, for `forRootAsync({ useClass })`. */
export interface QueueOptionsFactory {
  createQueueOptions(): QueueModuleOptions | Promise<QueueModuleOptions>;
}

/** Options of `QueueModule.forRootAsync()`. */
export interface QueueModuleAsyncOptions extends Pick<ModuleMetadata, 'imports'> {
  useFactory?: (...args: any[]) => QueueModuleOptions | Promise<QueueModuleOptions>;
  inject?: (InjectionToken | OptionalFactoryDependency)[];
  useClass?: new (...args: any[]) => QueueOptionsFactory;
  useExisting?: InjectionToken;
}
