import {
  Inject,
  Injectable,
  Logger,
  type BeforeApplicationShutdown,
  type OnApplicationBootstrap,
  type OnApplicationShutdown,
  type OnModuleInit,
} from '@nestjs/common';
import type * as PromClient from 'prom-client';
import { QueueDatabase } from '../../database/queue-database';
import { MetricsRepository } from '../../database/metrics.repository';
import { PeriodicTask } from '../../worker/maintenance/periodic-task';
import { InvalidModuleOptionsError } from '../../errors/invalid-module-options.error';
import { RESOLVED_QUEUE_OPTIONS } from '../../queue.constants';
import { JobState } from '../../interfaces/job.interface';
import { OutcomeTally } from '../outcome-tally';
import { createTallyMetrics, type TallyMetric } from './tally-metrics';
import { loadOptionalPeer } from '../optional-peer';
import type { ResolvedMetricsOptions } from '../observability-options.resolver';
import type { ResolvedQueueOptions } from '../../queue-options.resolver';

const STATES = Object.values(JobState);

interface Instruments {
  /** Counters and histograms, read from the tally at scrape time. */
  tallied: TallyMetric[];
  jobs: PromClient.Gauge<'queue' | 'state'>;
  oldestPending: PromClient.Gauge<'queue'>;
}

/**
 * The Prometheus metrics of `QueueModule.forRoot({ metrics })`, on a prom-client registry:
 * counters and timing histograms of this process's attempts (counted by the OutcomeTally from the
 * lifecycle hub, so after each write is durable, and read from it at scrape time), and gauges of every queue's jobs by state and of its oldest due pending job,
 * refreshed in the background every `refreshIntervalMs` from the queue registry's counts and one
 * index-only query. A scrape reads memory only: it issues no query.
 *
 * prom-client is required here, at boot, and only when `metrics` is set.
 */
@Injectable()
export class QueueMetrics implements OnModuleInit, OnApplicationBootstrap, BeforeApplicationShutdown, OnApplicationShutdown {
  private readonly logger = new Logger('QueueMetrics');
  private instruments?: Instruments;
  private registry?: PromClient.Registry;
  private refresher?: PeriodicTask;

  constructor(
    @Inject(RESOLVED_QUEUE_OPTIONS) private readonly options: ResolvedQueueOptions,
    private readonly database: QueueDatabase,
    private readonly tally: OutcomeTally,
  ) {}

  onModuleInit(): void {
    const settings = this.options.metrics;
    if (!settings) return;
    const prom = loadOptionalPeer<typeof PromClient>('prom-client', 'QueueModule.forRoot({ metrics })');
    this.registry = (settings.registry as PromClient.Registry | undefined) ?? prom.register;
    this.instruments = this.createInstruments(prom, settings, this.registry);
    this.tally.enable({ totals: true });
  }

  onApplicationBootstrap(): void {
    const settings = this.options.metrics;
    if (!settings || !this.instruments) return;
    const gauges = new MetricsRepository(this.database.repository);
    this.refresher = new PeriodicTask('Queue metrics', settings.refreshIntervalMs, () => this.refresh(gauges));
    this.refresher.start();
    // NOTE: the first refresh within the first interval, not at boot (see PeriodicTask.runSoon):
    // it recounts the job table, which at boot competes with the worker's first claims.
    this.refresher.runSoon();
  }

  /** The gauges stop refreshing before TypeORM closes its pool (in onApplicationShutdown). */
  async beforeApplicationShutdown(): Promise<void> {
    await this.refresher?.stop();
  }

  /** NOTE: after every beforeApplicationShutdown, so the worker's last outcomes are still counted. */
  onApplicationShutdown(): void {
    if (this.instruments && this.registry) {
      const { tallied, jobs, oldestPending } = this.instruments;
      for (const metric of [...tallied, jobs, oldestPending]) this.registry.removeSingleMetric((metric as unknown as { name: string }).name);
    }
    this.instruments = undefined;
  }

  /** Refreshes the gauges now (the background task does it every `refreshIntervalMs`). */
  async refreshNow(): Promise<void> {
    await this.refresher?.runOnce();
  }

  private createInstruments(prom: typeof PromClient, settings: ResolvedMetricsOptions, registry: PromClient.Registry): Instruments {
    const p = settings.prefix;
    const registered: { name: string }[] = [];
    try {
      const tallied = createTallyMetrics(p, this.tally);
      for (const metric of tallied) {
        // NOTE: registerMetric overwrites silently; a clash must fail like prom-client's own metrics do.
        if (registry.getSingleMetric(metric.name)) throw new Error(`A metric with the name ${metric.name} has already been registered.`);
        registry.registerMetric(metric as unknown as PromClient.Metric);
        registered.push(metric);
      }
      const jobs = new prom.Gauge({ name: `${p}_jobs`, help: 'Jobs by queue and state, as last counted (refreshed in the background).', labelNames: ['queue', 'state'], registers: [registry] });
      registered.push(jobs as unknown as { name: string });
      const oldestPending = new prom.Gauge({
        name: `${p}_oldest_pending_job_age_seconds`,
        help: 'Age of the oldest due pending job of each queue (0 when none is due), refreshed in the background.',
        labelNames: ['queue'],
        registers: [registry],
      });
      return { tallied, jobs, oldestPending };
    } catch (error) {
      // NOTE: what was registered before the clash is taken back, so a fixed boot starts clean.
      for (const metric of registered) registry.removeSingleMetric(metric.name);
      throw new InvalidModuleOptionsError(
        'metrics.prefix',
        p,
        `a prefix no metric of this registry uses yet (${(error as Error).message}; give each QueueModule on one registry its own prefix)`,
      );
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
