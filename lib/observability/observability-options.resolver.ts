import { assertInteger, assertKnownKeys } from '../producer/job-options.validator';
import { InvalidModuleOptionsError } from '../errors/invalid-module-options.error';
import { MAX_INT32 } from '../queue.constants';
import { assertName } from '../producer/job-options.validator';
import type { HealthOptions, MetricsOptions, StatsOptions } from '../interfaces/observability.interface';

export const DEFAULT_STATS_RETENTION_MS = 14 * 24 * 3_600_000;
export const DEFAULT_STATS_FLUSH_INTERVAL_MS = 5000;
export const DEFAULT_METRICS_PREFIX = 'nestjs_pg_queue';
export const DEFAULT_METRICS_REFRESH_INTERVAL_MS = 5000;

export const KNOWN_STATS_OPTIONS = ['retentionMs', 'flushIntervalMs'] as const;
export const KNOWN_METRICS_OPTIONS = ['registry', 'prefix', 'refreshIntervalMs'] as const;
export const KNOWN_HEALTH_OPTIONS = ['timeoutMs', 'maxPendingAgeMs'] as const;
export const DEFAULT_HEALTH_TIMEOUT_MS = 1000;

/** Prometheus' metric name pattern. */
const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;

export interface ResolvedStatsOptions {
  retentionMs: number;
  flushIntervalMs: number;
}

export interface ResolvedMetricsOptions {
  /** A prom-client Registry, or undefined for prom-client's global one. */
  registry?: PromRegistryLike;
  prefix: string;
  refreshIntervalMs: number;
}

/** What the library needs of a prom-client Registry (checked at boot, so a wrong object fails there). */
export interface PromRegistryLike {
  registerMetric(metric: unknown): void;
  getSingleMetric(name: string): unknown;
  removeSingleMetric(name: string): void;
  metrics(): Promise<string>;
}

export interface ResolvedHealthOptions {
  timeoutMs: number;
  /** A bound for every queue, a bound per queue, or none. */
  maxPendingAgeMs?: number | Record<string, number>;
}

const fail = (option: string, value: unknown, expected: string) => new InvalidModuleOptionsError(option, value, expected);

/** Validates `stats` (undefined: on with defaults; false: off). */
export function resolveStatsOptions(stats: StatsOptions | false | undefined): ResolvedStatsOptions | false {
  if (stats === false) return false;
  const given = stats ?? {};
  if (typeof given !== 'object' || given === null) throw fail('stats', given, 'false or an object { retentionMs?, flushIntervalMs? }');
  assertKnownKeys(given, KNOWN_STATS_OPTIONS, 'stats.', fail);
  const retentionMs = given.retentionMs ?? DEFAULT_STATS_RETENTION_MS;
  const flushIntervalMs = given.flushIntervalMs ?? DEFAULT_STATS_FLUSH_INTERVAL_MS;
  assertInteger('stats.retentionMs', retentionMs, 60_000, Number.MAX_SAFE_INTEGER, fail);
  assertInteger('stats.flushIntervalMs', flushIntervalMs, 100, MAX_INT32, fail);
  return { retentionMs, flushIntervalMs };
}

/** Validates `metrics` (undefined: no metrics, prom-client never loaded). */
export function resolveMetricsOptions(metrics: MetricsOptions | undefined): ResolvedMetricsOptions | undefined {
  if (metrics === undefined) return undefined;
  if (typeof metrics !== 'object' || metrics === null) throw fail('metrics', metrics, 'an object { registry?, prefix?, refreshIntervalMs? }');
  assertKnownKeys(metrics, KNOWN_METRICS_OPTIONS, 'metrics.', fail);
  const prefix = metrics.prefix ?? DEFAULT_METRICS_PREFIX;
  if (typeof prefix !== 'string' || !METRIC_NAME.test(prefix)) {
    throw fail('metrics.prefix', prefix, 'a Prometheus metric name prefix: letters, digits, _ and :, not starting with a digit');
  }
  const registry = metrics.registry;
  if (registry !== undefined && !isRegistry(registry)) {
    throw fail('metrics.registry', '[not a prom-client Registry]', 'a prom-client Registry (new Registry() or register), or undefined for the global one');
  }
  const refreshIntervalMs = metrics.refreshIntervalMs ?? DEFAULT_METRICS_REFRESH_INTERVAL_MS;
  assertInteger('metrics.refreshIntervalMs', refreshIntervalMs, 1000, MAX_INT32, fail);
  return { registry: registry as PromRegistryLike | undefined, prefix, refreshIntervalMs };
}

function isRegistry(value: unknown): value is PromRegistryLike {
  if (typeof value !== 'object' || value === null) return false;
  const r = value as Record<string, unknown>;
  return ['registerMetric', 'getSingleMetric', 'removeSingleMetric', 'metrics'].every((m) => typeof r[m] === 'function');
}

/** Validates `health` (undefined: defaults, no pending-age bound). */
export function resolveHealthOptions(health: HealthOptions | undefined): ResolvedHealthOptions {
  const given = health ?? {};
  if (typeof given !== 'object' || given === null) throw fail('health', given, 'an object { timeoutMs?, maxPendingAgeMs? }');
  assertKnownKeys(given, KNOWN_HEALTH_OPTIONS, 'health.', fail);
  const timeoutMs = given.timeoutMs ?? DEFAULT_HEALTH_TIMEOUT_MS;
  assertInteger('health.timeoutMs', timeoutMs, 1, MAX_INT32, fail);
  const max = given.maxPendingAgeMs;
  if (max === undefined) return { timeoutMs };
  if (typeof max === 'object' && max !== null && !Array.isArray(max)) {
    for (const [queue, ms] of Object.entries(max)) {
      assertName('queue', queue, (_o, value, expected) => fail('health.maxPendingAgeMs', value, `queue names as keys: ${expected}`));
      assertPositive(`health.maxPendingAgeMs.${queue}`, ms);
    }
    return { timeoutMs, maxPendingAgeMs: { ...max } };
  }
  assertPositive('health.maxPendingAgeMs', max);
  return { timeoutMs, maxPendingAgeMs: max };
}

function assertPositive(option: string, value: unknown): void {
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) throw fail(option, value, 'a positive number of milliseconds');
}
