import { Inject, Injectable } from '@nestjs/common';
import { QueueService } from '../producer/queue.service';
import { JobState, type Job } from '../interfaces/job.interface';
import type { QueueInfo } from '../interfaces/queue-info.interface';
import { DASHBOARD_FAILURE_SAMPLE, DASHBOARD_OPTIONS } from './dashboard.constants';
import type { QueueDashboardOptions } from './dashboard-options.interface';

/** Completed and failed jobs per minute of the last hour, oldest minute first (60 values each). */
export interface QueueThroughput {
  completed: number[];
  failed: number[];
}

/** Failed jobs of one queue and name whose last errors read the same. */
export interface FailureGroup {
  queue: string;
  name: string;
  errorName: string;
  message: string;
  count: number;
  newestId: string;
  newestAt: Date | null;
}

interface Cached<T> {
  at: number;
  value: Promise<T>;
}

const MINUTES = 60;

/**
 * What the pages show, read through `QueueService`'s public API. NOTE: the queue list and the
 * chart data are cached per process for `cacheMs` and shared by every request of that window, so
 * the database load does not grow with the number of open dashboards.
 */
@Injectable()
export class DashboardData {
  private queues?: Cached<QueueInfo[]>;
  private stats?: Cached<Map<string, QueueThroughput>>;
  private ages?: Cached<Record<string, number>>;
  private readonly cacheMs: number;

  constructor(
    private readonly queue: QueueService,
    @Inject(DASHBOARD_OPTIONS) private readonly options: QueueDashboardOptions,
  ) {
    this.cacheMs = options.cacheMs ?? 2000;
  }

  /** Every queue (cached); `fresh` reads it again (after an action that changed one). */
  getQueues(fresh = false): Promise<QueueInfo[]> {
    if (fresh || !this.queues || Date.now() - this.queues.at > this.cacheMs) {
      const value = this.queue.getQueues();
      this.queues = { at: Date.now(), value };
      // NOTE: a failed read is not kept: the next request tries again.
      value.catch(() => { if (this.queues?.value === value) this.queues = undefined; });
    }
    return this.queues.value;
  }

  /** The queue of this name, or undefined (read again once before saying so: it may be new). */
  async findQueue(name: string): Promise<QueueInfo | undefined> {
    return (await this.getQueues()).find((q) => q.name === name) ?? (await this.getQueues(true)).find((q) => q.name === name);
  }

  /** Per queue: completed and failed per minute, the last hour, from the per-minute rollups (cached). */
  getThroughput(): Promise<Map<string, QueueThroughput>> {
    if (!this.stats || Date.now() - this.stats.at > Math.max(this.cacheMs, 5000)) {
      const value = this.readThroughput();
      this.stats = { at: Date.now(), value };
      value.catch(() => { if (this.stats?.value === value) this.stats = undefined; });
    }
    return this.stats.value;
  }

  /** Per queue, how long its oldest due pending job has waited (ms); cached like the charts. */
  getPendingAges(): Promise<Record<string, number>> {
    if (!this.ages || Date.now() - this.ages.at > Math.max(this.cacheMs, 5000)) {
      const value = this.queue.getPendingAges();
      this.ages = { at: Date.now(), value };
      value.catch(() => { if (this.ages?.value === value) this.ages = undefined; });
    }
    return this.ages.value;
  }

  private async readThroughput(): Promise<Map<string, QueueThroughput>> {
    const until = new Date(Math.floor(Date.now() / 60_000) * 60_000 + 60_000);
    const since = new Date(until.getTime() - MINUTES * 60_000);
    const rows = await this.queue.getStats({ since, until });
    const byQueue = new Map<string, QueueThroughput>();
    for (const row of rows) {
      const index = Math.floor((row.minute.getTime() - since.getTime()) / 60_000);
      if (index < 0 || index >= MINUTES) continue;
      let series = byQueue.get(row.queue);
      if (!series) byQueue.set(row.queue, (series = { completed: new Array(MINUTES).fill(0), failed: new Array(MINUTES).fill(0) }));
      series.completed[index] += row.completed;
      series.failed[index] += row.failed;
    }
    return byQueue;
  }

  /** The job as it may be shown (`redact`). */
  redact<T extends Job>(job: T): T {
    return this.options.redact ? (this.options.redact(job) as T) : job;
  }

  /**
   * The newest failed jobs (at most {@link DASHBOARD_FAILURE_SAMPLE}, one bounded page of
   * `listJobs`), grouped by queue, job name and last error; largest group first.
   */
  async failureGroups(queue?: string): Promise<{ groups: FailureGroup[]; sampled: number; more: boolean }> {
    const page = await this.queue.listJobs({ queue: queue || undefined, state: JobState.Failed, limit: DASHBOARD_FAILURE_SAMPLE });
    const groups = new Map<string, FailureGroup>();
    for (const job of page.jobs) {
      const shown = this.redact(job);
      const errorName = shown.lastError?.name ?? '';
      const message = firstLine(shown.lastError?.message ?? '');
      const key = JSON.stringify([job.queue, job.name, errorName, message]);
      const group = groups.get(key);
      if (group) group.count += 1;
      else groups.set(key, { queue: job.queue, name: job.name, errorName, message, count: 1, newestId: job.id, newestAt: job.finishedAt });
    }
    return { groups: [...groups.values()].sort((a, b) => b.count - a.count), sampled: page.jobs.length, more: page.next !== null };
  }
}

/** The first line of an error message, at most 200 characters (what groups failures and what a search for them uses). */
export function firstLine(message: string): string {
  const line = message.split('\n', 1)[0];
  return line.length > 200 ? line.slice(0, 200) : line;
}
