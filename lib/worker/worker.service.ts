import { Inject, Injectable, Logger, type BeforeApplicationShutdown, type OnApplicationBootstrap } from '@nestjs/common';
import { hostname } from 'node:os';
import { randomUUID } from 'node:crypto';
import { QueueDatabase } from '../database/queue-database';
import { JobNotificationListener, type JobNotification } from '../database/job-notification.listener';
import { HandlerRegistry } from '../discovery/handler.registry';
import { claimDefaultsOf } from './claim-defaults';
import { JobCompleter } from './job-completer';
import { JobExecutor } from './job-executor';
import { LeaseKeeper } from './lease-keeper';
import { QueuePoller } from './queue-poller';
import { QueueWakeups } from './queue-wakeups';
import { RunningJobs } from './running-jobs';
import { LeaseRescuer } from './maintenance/lease-rescuer';
import { RetentionCleaner } from './maintenance/retention-cleaner';
import { JobCancelledError } from '../errors/job-cancelled.error';
import { WorkerShutdownError } from '../errors/worker-shutdown.error';
import { DEFAULT_CONCURRENCY, RESOLVED_QUEUE_OPTIONS } from '../queue.constants';
import type { ResolvedQueueOptions, ResolvedWorkerOptions } from '../queue-options.resolver';

/** Grace given to the final outcome writes at shutdown, after running jobs were aborted. */
const FINAL_WRITE_GRACE_MS = 3000;

/**
 * The worker of this process: one poller per queue that has a processor here, the executor that
 * runs attempts, the completer that writes outcomes, the lease keeper, the rescuer and the
 * retention cleaner, and the LISTEN connection. Starts in `onApplicationBootstrap` (after discovery
 * and migration in `onModuleInit`), stops in `beforeApplicationShutdown` (before TypeORM closes
 * its DataSource in `onApplicationShutdown`).
 */
@Injectable()
export class QueueWorker implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly logger = new Logger('QueueWorker');
  /** Identifies this process's leases: host, pid and a random part (pids repeat across hosts). */
  readonly workerId = `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
  private readonly running = new RunningJobs();
  /** Attempts started and not settled (outcome written or given up); `execute()` never rejects. */
  private inflight = 0;
  private idleWaiters: (() => void)[] = [];
  private pollers = new Map<string, QueuePoller>();
  private stoppables: { stop(): Promise<void> }[] = [];
  private completer?: JobCompleter;
  private unsubscribe?: () => void;
  private started = false;
  private stopping?: Promise<void>;

  constructor(
    @Inject(RESOLVED_QUEUE_OPTIONS) private readonly options: ResolvedQueueOptions,
    private readonly database: QueueDatabase,
    private readonly registry: HandlerRegistry,
    private readonly wakeups: QueueWakeups,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    if (this.options.worker === false) return;
    await this.start(this.options.worker);
  }

  async beforeApplicationShutdown(): Promise<void> {
    await this.stop();
  }


  private async start(settings: ResolvedWorkerOptions): Promise<void> {
    const repository = await this.database.getRepository();
    const queues = this.registry.getQueues();
    this.started = true;
    if (this.options.retentionMs !== undefined) {
      const cleaner = new RetentionCleaner(repository, this.options.retentionMs);
      cleaner.start();
      void cleaner.runOnce();
      this.stoppables.push(cleaner);
    }
    if (queues.length === 0) {
      // NOTE: most often a processor left out of every module's `providers`: its jobs would stay
      // pending forever without a word.
      this.logger.warn(
        'No @Processor found: this worker runs no jobs. List your processors in a module\'s providers, or set worker: false in a process that only enqueues.',
      );
      return;
    }

    const completer = new JobCompleter(repository, this.workerId);
    this.completer = completer;
    const executor = new JobExecutor(this.registry, repository, completer, this.running, this.workerId, settings.lockDurationMs);
    for (const registered of queues) {
      const poller = new QueuePoller(
        {
          queue: registered.queue,
          concurrency: registered.options.concurrency ?? DEFAULT_CONCURRENCY,
          workerId: this.workerId,
          lockDurationMs: settings.lockDurationMs,
          pollIntervalMs: settings.pollIntervalMs,
          defaults: claimDefaultsOf(this.options, registered),
        },
        repository,
        (job, hooks) => {
          const attempt = executor.execute(job, hooks);
          this.inflight++;
          void attempt.then(() => {
            if (--this.inflight === 0) this.idleWaiters.splice(0).forEach((resolve) => resolve());
          });
        },
      );
      this.pollers.set(registered.queue, poller);
    }

    const keeper = new LeaseKeeper(repository, this.running, this.workerId, settings.lockDurationMs, settings.heartbeatIntervalMs);
    const rescuer = new LeaseRescuer(repository, [...this.pollers.keys()], settings.rescueIntervalMs);
    keeper.start();
    rescuer.start();
    void rescuer.runOnce();
    this.stoppables.push(keeper, rescuer);

    this.unsubscribe = this.wakeups.subscribe((queue, inMs) => this.pollers.get(queue)?.wake(inMs));
    if (settings.listen) {
      const listener = new JobNotificationListener(repository, {
        onNotification: (n) => this.onNotification(n),
        onConnected: () => this.pollers.forEach((p) => p.wake()),
      });
      this.stoppables.push(listener);
      await listener.start();
    }
    for (const poller of this.pollers.values()) poller.start();
    this.logger.log(`Worker ${this.workerId} processing ${[...this.pollers.keys()].map((q) => `"${q}"`).join(', ')}`);
  }

  private whenIdle(): Promise<void> {
    return this.inflight === 0 ? Promise.resolve() : new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private onNotification(notification: JobNotification): void {
    if (notification.type === 'job') this.pollers.get(notification.queue)?.wake(notification.inMs);
    else this.running.abort(notification.id, new JobCancelledError(notification.id));
  }

  /**
   * Graceful shutdown: stop claiming, let running jobs finish for up to `shutdownTimeoutMs`, abort
   * the rest and hand them back to pending without counting the attempt, then write the outcomes.
   */
  stop(): Promise<void> {
    this.stopping ??= this.doStop();
    return this.stopping;
  }

  private async doStop(): Promise<void> {
    if (!this.started || this.options.worker === false) return;
    const { shutdownTimeoutMs } = this.options.worker;
    this.unsubscribe?.();
    await Promise.all([...this.pollers.values()].map((p) => p.stop()));
    if (this.inflight > 0) {
      this.logger.log(`Shutting down: waiting up to ${shutdownTimeoutMs} ms for ${this.inflight} running job(s)`);
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        this.whenIdle(),
        new Promise((resolve) => (timer = setTimeout(resolve, shutdownTimeoutMs))),
      ]);
      clearTimeout(timer);
    }
    const left = this.running.all();
    if (left.length > 0) {
      this.logger.warn(`Shutting down: ${left.length} job(s) still running after ${shutdownTimeoutMs} ms are aborted and handed back to pending`);
      for (const r of left) this.running.abort(r.job.id, new WorkerShutdownError(shutdownTimeoutMs));
    }
    await this.completer?.drain(Date.now() + FINAL_WRITE_GRACE_MS);
    await this.whenIdle();
    for (const s of this.stoppables) await s.stop();
    this.stoppables = [];
    this.started = false;
  }
}
