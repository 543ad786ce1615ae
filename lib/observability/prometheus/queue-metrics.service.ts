import { Inject, Injectable, Logger, type OnApplicationBootstrap, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import type * as PromClient from 'prom-client';
import { QueueDatabase } from '../../database/queue-database';
import { MetricsRepository } from '../../database/metrics.repository';
import { JobLifecycle, type JobLifecycleEvent } from '../../worker/job-lifecycle';
import { PeriodicTask } from '../../worker/maintenance/periodic-task';
import { InvalidModuleOptionsError } from '../../errors/invalid-module-options.error';
import { RESOLVED_QUEUE_OPTIONS } from '../../queue.constants';
import { JobState } from '../../interfaces/job.interface';
import { AttemptTimer } from '../attempt-timer';
import { STATS_BUCKET_BOUNDS_MS } from '../stats-buckets';
import { loadOptionalPeer } from '../optional-peer';
import type { ResolvedMetricsOptions } from '../observability-options.resolver';
import type { ResolvedQueueOptions } from '../../queue-options.resolver';

const STATES = Object.values(JobState);

interface Instruments {
  completed: PromClient.Counter<'queue' | 'name'>;
  failed: PromClient.Counter<'queue' | 'name'>;
  retried: PromClient.Counter<'queue' | 'name'>;
  rescued: PromClient.Counter<'queue' | 'name'>;
  wait: PromClient.Histogram<'queue' | 'name'>;
  run: PromClient.Histogram<'queue' | 'name'>;
  jobs: PromClient.Gauge<'queue' | 'state'>;
  oldestPending: PromClient.Gauge<'queue'>;
}

/**
 * The Prometheus metrics of `QueueModule.forRoot({ metrics })`, on a prom-client registry:
 * counters and timing histograms of this process's attempts (from the lifecycle hub, so after each
 * write is durable), and gauges of every queue's jobs by state and of its oldest due pending job,
 * refreshed in the background every `refreshIntervalMs` from the queue registry's counts and one
 * index-only query. A scrape reads memory only: it issues no query.
 *
 * prom-client is required here, at boot, and only when `metrics` is set.
 */
@Injectable()
export class QueueMetrics implements OnModuleInit, OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger('QueueMetrics');
  private instruments?: Instruments;
  private registry?: PromClient.Registry;
  private unsubscribe?: () => void;
  private refresher?: PeriodicTask;
  private readonly timings = new AttemptTimer();

  constructor(
    @Inject(RESOLVED_QUEUE_OPTIONS) private readonly options: ResolvedQueueOptions,
    private readonly database: QueueDatabase,
    private readonly lifecycle: JobLifecycle,
  ) {}

  onModuleInit(): void {
    const settings = this.options.metrics;
    if (!settings) return;
    const prom = loadOptionalPeer<typeof PromClient>('prom-client', 'QueueModule.forRoot({ metrics })');
    this.registry = (settings.registry as PromClient.Registry | undefined) ?? prom.register;
    this.instruments = this.createInstruments(prom, settings, this.registry);
    this.unsubscribe = this.lifecycle.subscribe((event) => this.record(event));
  }

  onApplicationBootstrap(): void {
    const settings = this.options.metrics;
    if (!settings || !this.instruments) return;
    const gauges = new MetricsRepository(this.database.repository);
    this.refresher = new PeriodicTask('Queue metrics', settings.refreshIntervalMs, () => this.refresh(gauges));
    this.refresher.start();
    void this.refresher.runOnce();
  }

  /** NOTE: after every beforeApplicationShutdown, so the worker's last outcomes are still counted. */
  async onApplicationShutdown(): Promise<void> {
    await this.refresher?.stop();
    this.unsubscribe?.();
    this.unsubscribe = undefined;
    if (this.instruments && this.registry) {
      for (const metric of Object.values(this.instruments)) this.registry.removeSingleMetric((metric as unknown as { name: string }).name);
    }
    this.instruments = undefined;
  }

  /** Refreshes the gauges now (the background task does it every `refreshIntervalMs`). */
  async refreshNow(): Promise<void> {
    await this.refresher?.runOnce();
  }

  private createInstruments(prom: typeof PromClient, settings: ResolvedMetricsOptions, registry: PromClient.Registry): Instruments {
    const p = settings.prefix;
    const registers = [registry];
    const byJob = ['queue', 'name'] as const;
    const counter = (what: string, help: string) => new prom.Counter({ name: `${p}_jobs_${what}_total`, help, labelNames: byJob, registers });
    const buckets = STATS_BUCKET_BOUNDS_MS.map((ms) => ms / 1000);
    const created: Partial<Instruments> = {};
    try {
      created.completed = counter('completed', 'Attempts that completed their job, by queue and job name.');
      created.failed = counter('failed', 'Jobs that failed for good (attempts spent, not retryable, or rescued with no attempt left), by queue and job name.');
      created.retried = counter('retried', 'Attempts that failed and were scheduled to run again, by queue and job name.');
      created.rescued = counter('rescued', 'Jobs put back or failed by this process because the lease of the worker running them lapsed, by queue and job name.');
      created.wait = new prom.Histogram({ name: `${p}_job_wait_seconds`, help: 'Time from a job being due to its attempt starting.', labelNames: byJob, buckets, registers });
      created.run = new prom.Histogram({ name: `${p}_job_run_seconds`, help: 'Time from an attempt starting to its outcome being written.', labelNames: byJob, buckets, registers });
      created.jobs = new prom.Gauge({ name: `${p}_jobs`, help: 'Jobs by queue and state, as last counted (refreshed in the background).', labelNames: ['queue', 'state'], registers });
      created.oldestPending = new prom.Gauge({
        name: `${p}_oldest_pending_job_age_seconds`,
        help: 'Age of the oldest due pending job of each queue (0 when none is due), refreshed in the background.',
        labelNames: ['queue'],
        registers,
      });
    } catch (error) {
      // NOTE: what was registered before the clash is taken back, so a fixed boot starts clean.
      for (const metric of Object.values(created)) registry.removeSingleMetric((metric as unknown as { name: string }).name);
      throw new InvalidModuleOptionsError(
        'metrics.prefix',
        p,
        `a prefix no metric of this registry uses yet (${(error as Error).message}; give each QueueModule on one registry its own prefix)`,
      );
    }
    return created as Instruments;
  }

  private record(event: JobLifecycleEvent): void {
    const m = this.instruments;
    if (!m) return;
    const labels = { queue: event.job.queue, name: event.job.name };
    switch (event.type) {
      case 'active':
        m.wait.observe(labels, this.timings.started(event.job, event.at) / 1000);
        return;
      case 'completed':
      case 'failed':
      case 'retrying':
        (event.type === 'completed' ? m.completed : event.type === 'failed' ? m.failed : m.retried).inc(labels);
        m.run.observe(labels, this.timings.ended(event.job, event.at) / 1000);
        return;
      case 'rescued':
        m.rescued.inc(labels);
        if (event.job.state === 'failed') m.failed.inc(labels);
        return;
      default:
        return;
    }
  }

  private async refresh(gauges: MetricsRepository): Promise<void> {
    const [queues, ages] = await Promise.all([(await this.database.getRegistry()).list(), gauges.oldestDueAges()]);
    const m = this.instruments;
    if (!m) return;
    m.jobs.reset();
    m.oldestPending.reset();
    for (const queue of queues) {
      for (const state of STATES) m.jobs.set({ queue: queue.name, state }, queue.counts[state]);
      m.oldestPending.set({ queue: queue.name }, (ages.get(queue.name) ?? 0) / 1000);
    }
    this.logger.debug(`Gauges refreshed for ${queues.length} queue(s)`);
  }
}
