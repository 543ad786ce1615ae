import type { DataSource } from 'typeorm';
import { createTableNaming, type TableNaming } from './database/table-naming';
import { assertInteger, assertKnownKeys, moduleOptionError, validateRunOptions } from './producer/job-options.validator';
import { KNOWN_OPTIONS } from './producer/known-options';
import type { DefaultJobOptions } from './interfaces/job-options.interface';
import type { QueueModuleOptions } from './interfaces/queue-module-options.interface';
import {
  DEFAULT_CLAIM_AHEAD_MAX_WAIT_MS,
  DEFAULT_LOCK_DURATION_MS,
  DEFAULT_POLL_INTERVAL_MS,
  DEFAULT_QUERY_TIMEOUT_MS,
  DEFAULT_SHUTDOWN_TIMEOUT_MS,
  DEFAULT_UNKNOWN_JOB_GRACE_MS,
  DEFAULT_WORKER_POOL_SIZE,
  DEFAULT_ADMIN_QUERY_TIMEOUT_MS,
  MAX_INT32,
} from './queue.constants';
import {
  resolveHealthOptions,
  resolveMetricsOptions,
  resolveStatsOptions,
  type ResolvedHealthOptions,
  type ResolvedMetricsOptions,
  type ResolvedStatsOptions,
} from './observability/observability-options.resolver';

/** Worker settings with every default filled in and the derived intervals computed. */
export interface ResolvedWorkerOptions {
  pollIntervalMs: number;
  lockDurationMs: number;
  shutdownTimeoutMs: number;
  listen: boolean;
  /** Connections of the worker's own pool. */
  poolSize: number;
  /** How often leases are renewed: a third of the lease, and at least every second without LISTEN
   * so a cancellation reaches the running job within about a second. */
  heartbeatIntervalMs: number;
  /** How often lapsed leases are looked for: half a lease, so a dead worker's job waits at most
   * about 1.5 lease lengths. */
  rescueIntervalMs: number;
  /** See `WorkerOptions.unknownJobGraceMs`. */
  unknownJobGraceMs: number;
  /** See `WorkerOptions.claimAhead`. */
  claimAhead: false | { maxWaitMs: number };
}

/** The module options after validation, with defaults filled in. */
export interface ResolvedQueueOptions {
  dataSource?: DataSource | string;
  naming: TableNaming;
  migrationsRun: boolean;
  defaultJobOptions: DefaultJobOptions;
  worker: ResolvedWorkerOptions | false;
  retentionMs?: number;
  queryTimeoutMs: number;
  preparedStatements: boolean;
  /** Per-minute rollups; false when turned off. */
  stats: ResolvedStatsOptions | false;
  /** Prometheus metrics; undefined when not configured. */
  metrics?: ResolvedMetricsOptions;
  /** The health check's settings. */
  health: ResolvedHealthOptions;
  /** OpenTelemetry spans on. */
  tracing: boolean;
  /** See `QueueModuleOptions.adminQueryTimeoutMs`. */
  adminQueryTimeoutMs: number;
}

/** Validates `QueueModule.forRoot()` options; a bad value fails the boot with InvalidModuleOptionsError. */
export function resolveQueueOptions(options: QueueModuleOptions = {}): ResolvedQueueOptions {
  if (typeof options !== 'object' || options === null) throw moduleOptionError('options', options, 'an object');
  assertKnownKeys(options, KNOWN_OPTIONS.module, '', moduleOptionError);
  const naming = createTableNaming(options.schema, options.tableName);
  const defaults = options.defaultJobOptions ?? {};
  if (typeof defaults !== 'object' || defaults === null) throw moduleOptionError('defaultJobOptions', defaults, 'an object');
  assertKnownKeys(defaults, KNOWN_OPTIONS.moduleDefaults, 'defaultJobOptions.', moduleOptionError);
  validateRunOptions(defaults, 'defaultJobOptions.', moduleOptionError);
  if (defaults.priority !== undefined) assertInteger('defaultJobOptions.priority', defaults.priority, -MAX_INT32, MAX_INT32, moduleOptionError);
  if (options.retentionMs !== undefined) assertInteger('retentionMs', options.retentionMs, 1, Number.MAX_SAFE_INTEGER, moduleOptionError);
  if (options.migrationsRun !== undefined && typeof options.migrationsRun !== 'boolean') {
    throw moduleOptionError('migrationsRun', options.migrationsRun, 'a boolean');
  }
  const queryTimeoutMs = options.queryTimeoutMs ?? DEFAULT_QUERY_TIMEOUT_MS;
  assertInteger('queryTimeoutMs', queryTimeoutMs, 1, MAX_INT32, moduleOptionError);
  const preparedStatements = options.preparedStatements ?? true;
  if (typeof preparedStatements !== 'boolean') throw moduleOptionError('preparedStatements', preparedStatements, 'a boolean');
  const tracing = options.tracing ?? false;
  if (typeof tracing !== 'boolean') throw moduleOptionError('tracing', tracing, 'a boolean');
  const adminQueryTimeoutMs = options.adminQueryTimeoutMs ?? DEFAULT_ADMIN_QUERY_TIMEOUT_MS;
  assertInteger('adminQueryTimeoutMs', adminQueryTimeoutMs, 1, MAX_INT32, moduleOptionError);
  const ds = options.dataSource;
  if (ds !== undefined && typeof ds !== 'string' && (typeof ds !== 'object' || ds === null || !('driver' in ds))) {
    throw moduleOptionError('dataSource', '[not a DataSource]', 'a TypeORM DataSource or the name of a @nestjs/typeorm connection');
  }
  return {
    dataSource: ds,
    naming,
    migrationsRun: options.migrationsRun ?? true,
    defaultJobOptions: defaults,
    worker: options.worker === false ? false : resolveWorkerOptions(options.worker ?? {}),
    retentionMs: options.retentionMs,
    queryTimeoutMs,
    preparedStatements,
    stats: resolveStatsOptions(options.stats),
    metrics: resolveMetricsOptions(options.metrics),
    health: resolveHealthOptions(options.health),
    tracing,
    adminQueryTimeoutMs,
  };
}

function resolveWorkerOptions(worker: Exclude<QueueModuleOptions['worker'], false | undefined>): ResolvedWorkerOptions {
  if (typeof worker !== 'object' || worker === null) throw moduleOptionError('worker', worker, 'false or an object');
  assertKnownKeys(worker, KNOWN_OPTIONS.worker, 'worker.', moduleOptionError);
  const pollIntervalMs = worker.pollIntervalMs ?? DEFAULT_POLL_INTERVAL_MS;
  const lockDurationMs = worker.lockDurationMs ?? DEFAULT_LOCK_DURATION_MS;
  const shutdownTimeoutMs = worker.shutdownTimeoutMs ?? DEFAULT_SHUTDOWN_TIMEOUT_MS;
  const listen = worker.listen ?? true;
  // NOTE: checked as given (not after `??`), so an explicit null is refused rather than defaulted.
  const unknownJobGraceMs = worker.unknownJobGraceMs === undefined ? DEFAULT_UNKNOWN_JOB_GRACE_MS : worker.unknownJobGraceMs;
  const poolSize = worker.poolSize ?? DEFAULT_WORKER_POOL_SIZE;
  assertInteger('worker.poolSize', poolSize, 1, 1000, moduleOptionError);
  assertInteger('worker.pollIntervalMs', pollIntervalMs, 10, MAX_INT32, moduleOptionError);
  assertInteger('worker.lockDurationMs', lockDurationMs, 300, MAX_INT32, moduleOptionError);
  assertInteger('worker.shutdownTimeoutMs', shutdownTimeoutMs, 0, MAX_INT32, moduleOptionError);
  assertInteger('worker.unknownJobGraceMs', unknownJobGraceMs, 0, MAX_INT32, moduleOptionError);
  if (typeof listen !== 'boolean') throw moduleOptionError('worker.listen', listen, 'a boolean');
  const third = Math.floor(lockDurationMs / 3);
  return {
    pollIntervalMs,
    lockDurationMs,
    shutdownTimeoutMs,
    listen,
    poolSize,
    heartbeatIntervalMs: listen ? third : Math.min(third, 1000),
    rescueIntervalMs: Math.floor(lockDurationMs / 2),
    unknownJobGraceMs,
    claimAhead: resolveClaimAhead(worker.claimAhead),
  };
}

function resolveClaimAhead(claimAhead: unknown): false | { maxWaitMs: number } {
  if (claimAhead === false) return false;
  if (claimAhead === undefined) return { maxWaitMs: DEFAULT_CLAIM_AHEAD_MAX_WAIT_MS };
  if (typeof claimAhead !== 'object' || claimAhead === null) throw moduleOptionError('worker.claimAhead', claimAhead, 'false or an object');
  assertKnownKeys(claimAhead, KNOWN_OPTIONS.claimAhead, 'worker.claimAhead.', moduleOptionError);
  const maxWaitMs = (claimAhead as { maxWaitMs?: unknown }).maxWaitMs ?? DEFAULT_CLAIM_AHEAD_MAX_WAIT_MS;
  assertInteger('worker.claimAhead.maxWaitMs', maxWaitMs, 1, MAX_INT32, moduleOptionError);
  return { maxWaitMs: maxWaitMs as number };
}
