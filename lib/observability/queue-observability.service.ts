import { Injectable } from '@nestjs/common';
import { QueueDatabase } from '../database/queue-database';
import { StatsRepository } from '../database/stats.repository';
import { WorkerRegistryRepository } from '../database/worker-registry.repository';
import { assertName } from '../producer/job-options.validator';
import { InvalidJobOptionError } from '../errors/invalid-job-option.error';
import type { QueueStatsFilter, QueueStatsRow, WorkerInfo } from '../interfaces/observability.interface';

const HOUR_MS = 3_600_000;

/** The reads behind `QueueService.getWorkers()` and `getStats()`: the worker registry and the rollups. */
@Injectable()
export class QueueObservability {
  private workers?: WorkerRegistryRepository;
  private stats?: StatsRepository;

  constructor(private readonly database: QueueDatabase) {}

  async getWorkers(): Promise<WorkerInfo[]> {
    this.workers ??= new WorkerRegistryRepository(await this.database.getRepository());
    return this.workers.list();
  }

  async getStats(filter: QueueStatsFilter = {}): Promise<QueueStatsRow[]> {
    if (typeof filter !== 'object' || filter === null) throw new InvalidJobOptionError('filter', filter, 'an object { queue?, since?, until? }');
    if (filter.queue !== undefined) assertName('queue', filter.queue);
    const until = dateOf('until', filter.until) ?? Date.now();
    const since = dateOf('since', filter.since) ?? until - HOUR_MS;
    if (since > until) throw new InvalidJobOptionError('since', filter.since, `a time no later than until (${new Date(until).toISOString()})`);
    this.stats ??= new StatsRepository(await this.database.getRepository());
    return this.stats.read(filter.queue ?? null, since, until);
  }
}

function dateOf(option: string, value: unknown): number | undefined {
  if (value === undefined) return undefined;
  if (!(value instanceof Date) || Number.isNaN(value.getTime())) throw new InvalidJobOptionError(option, value, 'a valid Date');
  return value.getTime();
}
