import type { JobRepository } from './job.repository';
import { buildQueueStatements, type QueueStatements } from './sql/queue.statements';
import type { JobCounts } from '../interfaces/job.interface';
import type { QueueInfo } from '../interfaces/queue-info.interface';

/** Counts this recent are read as they are; older ones are recounted first (by one caller at a time). */
export const COUNTS_MAX_AGE_MS = 2000;

interface RawQueueRow {
  name: string;
  paused: boolean;
  paused_at: number | null;
  counts: Partial<JobCounts> | null;
  counts_at: number | null;
  created_at: number;
  updated_at: number;
}

/** The queue registry (`<table>_queues`): pause and resume, and the list of queues with their counts. */
export class QueueRegistryRepository {
  private readonly statements: QueueStatements;

  constructor(private readonly jobs: JobRepository) {
    this.statements = buildQueueStatements(jobs.naming);
  }

  async register(queues: string[]): Promise<void> {
    if (queues.length > 0) await this.jobs.runStatement('registerQueues', this.statements.register, [queues]);
  }

  async pause(queue: string): Promise<QueueInfo> {
    const [row] = await this.jobs.runStatement<RawQueueRow>('pause', this.statements.pause, [queue]);
    return toQueueInfo(row);
  }

  /** The resumed queue, or null when it had no row (it was never paused). */
  async resume(queue: string): Promise<QueueInfo | null> {
    const [row] = await this.jobs.runStatement<RawQueueRow>('resume', this.statements.resume, [queue]);
    return row ? toQueueInfo(row) : null;
  }

  async list(): Promise<QueueInfo[]> {
    await this.jobs.runStatement('getQueues', this.statements.refreshCounts, [`nestjs-pg-queue:counts:${this.jobs.naming.qualified}`, COUNTS_MAX_AGE_MS]);
    return (await this.jobs.runStatement<RawQueueRow>('getQueues', this.statements.list, [])).map(toQueueInfo);
  }
}

function toQueueInfo(row: RawQueueRow): QueueInfo {
  const counts = row.counts ?? {};
  return {
    name: row.name,
    paused: row.paused,
    pausedAt: row.paused_at === null ? null : new Date(row.paused_at),
    counts: {
      pending: counts.pending ?? 0,
      active: counts.active ?? 0,
      completed: counts.completed ?? 0,
      failed: counts.failed ?? 0,
      cancelled: counts.cancelled ?? 0,
      blocked: counts.blocked ?? 0,
    },
    countsAt: row.counts_at === null ? null : new Date(row.counts_at),
    createdAt: new Date(row.created_at),
    updatedAt: new Date(row.updated_at),
  };
}
