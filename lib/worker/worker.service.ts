import { Inject, Injectable, Logger, type BeforeApplicationShutdown, type OnApplicationBootstrap } from '@nestjs/common';
import { hostname } from 'node:os';
import { randomUUID } from 'node:crypto';
import { QueueDatabase } from '../database/queue-database';
import type { JobRepository } from '../database/job.repository';
import { JobNotificationListener, type JobNotification } from '../database/job-notification.listener';
import { HandlerRegistry } from '../discovery/handler.registry';
import { claimDefaultsOf } from './claim-defaults';
import { JobCompleter } from './job-completer';
import { JobExecutor } from './job-executor';
import { JobActivity } from './job-activity';
import { LeaseKeeper } from './lease-keeper';
import { QueuePoller, type ClaimedJobRunner } from './queue-poller';
import { QueueWakeups } from './queue-wakeups';
import { JobLifecycle } from './job-lifecycle';
import { GlobalEventDemand } from '../events/global-event-demand';
import { IdleQueueProbe } from './idle-queue-probe';
import { FlowEventRelay } from './flow-event-relay';
import { RunningJobs, type RunningJob } from './running-jobs';
import { LeaseRescuer } from './maintenance/lease-rescuer';
import { RetentionCleaner } from './maintenance/retention-cleaner';
import { LimitsDeclarer } from './maintenance/limits-declarer';
import { ScheduleEnqueuer } from './maintenance/schedule-enqueuer';
import { ScheduleRegistry } from '../discovery/schedule.registry';
import { ScheduleRepository } from '../database/schedule.repository';
import { reconcileSchedules } from '../schedules/schedule-reconciler';
import { startObservabilityTasks } from './observability-tasks';
import { withTimeout } from './with-timeout';
import { OutcomeTally } from '../observability/outcome-tally';
import { QueueTracing } from '../observability/tracing/queue-tracing.service';
import { GroupJanitor } from './maintenance/group-janitor';
import { WorkerShutdownError } from '../errors/worker-shutdown.error';
import { DEFAULT_CONCURRENCY, RESOLVED_QUEUE_OPTIONS } from '../queue.constants';
import type { ResolvedQueueOptions, ResolvedWorkerOptions } from '../queue-options.resolver';

/**
 * At shutdown, how long handlers aborted after `shutdownTimeoutMs` get to return; only those that
 * do are handed back (attempt refunded). The rest keep their lease, no longer renewed.
 */
export const SHUTDOWN_ABORT_GRACE_MS = 1000;
/** Grace given to the final outcome writes at shutdown, after running jobs were aborted. */
export const FINAL_WRITE_GRACE_MS = 3000;
/**
 * A worker's declaration of its queues' limits holds this many lock durations unless renewed
 * (every half lock duration): five renewals may be missed (a busy event loop, a slow database)
 * before it lapses, and a killed worker's declaration stops counting after three lock durations.
 */
export const DECLARATION_LEASE_FACTOR = 3;
/** The maintenance whose first run waits for the first claims, in the order they then run. */
const FIRST_RUN_ORDER = ['rescue', 'retention', 'stats', 'schedules'] as const;
type FirstRuns = Map<(typeof FIRST_RUN_ORDER)[number], () => Promise<void> | void>;
/** The longest the maintenance's first runs wait for the pollers' first claims (see `runAfterFirstClaims`). */
export const FIRST_CLAIMS_WAIT_MS = 1000;

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
  private flowEvents?: FlowEventRelay;
  /** Attempts started and not settled (outcome written or given up); `execute()` never rejects. */
  private inflight = 0;
  private idleWaiters: { condition: () => boolean; resolve: () => void }[] = [];
  private pollers = new Map<string, QueuePoller>();
  private stoppables: { stop(): Promise<void> }[] = [];
  private completer?: JobCompleter;
  private activity?: JobActivity;
  private keeper?: LeaseKeeper;
  private scheduler?: ScheduleEnqueuer;
  private unsubscribe?: () => void;
  private listener?: JobNotificationListener;
  private unsubscribePauses?: () => void;
  private started = false;
  private stopping?: Promise<void>;

  constructor(
    @Inject(RESOLVED_QUEUE_OPTIONS) private readonly options: ResolvedQueueOptions,
    private readonly database: QueueDatabase,
    private readonly registry: HandlerRegistry,
    private readonly wakeups: QueueWakeups,
    private readonly lifecycle: JobLifecycle,
    private readonly eventDemand: GlobalEventDemand,
    private readonly declaredSchedules: ScheduleRegistry,
    private readonly tally: OutcomeTally,
    private readonly tracing: QueueTracing,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    if (this.options.worker === false) {
      this.warnOfIgnoredRunDefaults();
      return;
    }
    await this.start(this.options.worker);
  }

  /**
   * NOTE: run options left unset on a job are fixed when a worker first claims it, from its
   * processor's defaults or the claiming process's module defaults: the module defaults of a
   * producer-only process never reach its jobs. Said once at boot rather than silently ignored.
   */
  private warnOfIgnoredRunDefaults(): void {
    const { maxAttempts, backoff, timeoutMs } = this.options.defaultJobOptions;
    const ignored = Object.entries({ maxAttempts, backoff, timeoutMs }).filter(([, value]) => value !== undefined).map(([key]) => `defaultJobOptions.${key}`);
    if (ignored.length === 0) return;
    this.logger.warn(
      `${ignored.join(', ')} ha${ignored.length === 1 ? 's' : 've'} no effect with worker: false: run options are fixed when a worker claims a job, ` +
        `from the job's own options, its processor's defaultJobOptions, or the defaultJobOptions of the worker's QueueModule. Set them there (defaultJobOptions.priority does apply here).`,
    );
  }

  async beforeApplicationShutdown(): Promise<void> {
    await this.stop();
  }


  private async start(settings: ResolvedWorkerOptions): Promise<void> {
    const repository = await this.database.getRepository();
    const queues = this.registry.getQueues();
    this.started = true;
    // NOTE: before any worker statement, so none of them waits behind the app's queries; none at
    // all in a process with nothing to run (pg-pool connects on demand).
    repository.openWorkerPool(settings.poolSize);
    // NOTE: the first runs of the maintenance that need not come before the first claims (retention,
    // the rollups' pruning, the rescue, the schedules' first look), run once the pollers' first
    // claims are back (see `runAfterFirstClaims`); at once in a worker with no processor.
    const firstRuns: FirstRuns = new Map();
    const startCleaner = (): void => {
      if (this.options.retentionMs === undefined) return;
      const cleaner = new RetentionCleaner(repository, this.options.retentionMs);
      cleaner.start();
      firstRuns.set('retention', () => cleaner.runOnce());
      this.stoppables.push(cleaner);
    };
    // NOTE: cron schedules: this process's declarations reconciled first (for the queues it has a
    // processor for), then an enqueuer like every worker's, whatever queues it runs.
    const schedules = new ScheduleRepository(repository);
    const startScheduler = async (): Promise<void> => {
      await reconcileSchedules(schedules, this.declaredSchedules.getAll(), queues.map((q) => q.queue), this.logger);
      const scheduler = new ScheduleEnqueuer(schedules);
      this.scheduler = scheduler;
      firstRuns.set('schedules', () => scheduler.start());
      this.stoppables.push(scheduler);
    };
    if (queues.length === 0) {
      startCleaner();
      await startScheduler();
      for (const run of firstRuns.values()) void run();
      // NOTE: most often a processor left out of every module's `providers`: its jobs would stay
      // pending forever without a word.
      this.logger.warn(
        'No @Processor found: this worker runs no jobs. List your processors in a module\'s providers, or set worker: false in a process that only enqueues.',
      );
      return;
    }

    this.unsubscribe = this.wakeups.subscribe((queue, inMs) => this.pollers.get(queue)?.wake(inMs));
    this.flowEvents = new FlowEventRelay(this.workerId, this.lifecycle, repository);
    this.unsubscribePauses = this.wakeups.subscribePauses((queue) => this.pollers.get(queue)?.handBackBuffered());
    const listener = settings.listen ? this.createListener(repository) : undefined;
    // NOTE: what must hold before the first claim, as lanes side by side rather than one step after
    // the other (in sequence they took 25-50 ms of every boot, measured in the drain bench):
    // - the worker pool's warm-up, then who listens to global events (so their events are sent from
    //   the first claim on), then the worker registry's first beat;
    // - the warm-up, then the limits declared in code, in the registry before the first claim (the
    //   same statement gives every queue of this worker its registry row);
    // - on the app's pool, this process's cron schedules;
    // - the LISTEN connection on its own (pause and cancel notices heard from the first claim on).
    // Both worker-pool lanes wait for the warm-up and run one statement at a time, so they find its
    // two connections made rather than each opening one while it connects, and nothing else uses
    // that pool until the first claims (see `firstRuns`). Every lane is awaited, settled or not,
    // before a failure is thrown, so whatever started is in `stoppables` for the shutdown that follows.
    let limitedAtBoot: ReadonlySet<string> | undefined;
    // NOTE: a claim and an outcome write run at once from the first batch on.
    const warm = repository.warmWorkerPool(Math.min(2, settings.poolSize));
    await settleAll([
      (async () => {
        await warm;
        this.stoppables.push(this.eventDemand);
        await this.eventDemand.startWatching();
        // NOTE: the worker registry and rollups need nothing of the pollers; listed before the
        // first claim, so claims still begin only at the very end of bootstrap.
        this.stoppables.push(
          ...(await startObservabilityTasks(repository, this.options, settings, this.tally, {
            id: this.workerId,
            queues: Object.fromEntries(queues.map((q) => [q.queue, q.options.concurrency ?? DEFAULT_CONCURRENCY])),
            running: () => this.running.all().length,
          }, (run) => firstRuns.set('stats', run))),
        );
      })(),
      (async () => {
        const queueRegistry = await this.database.getRegistry();
        await warm;
        // NOTE: renewed like a lease (every rescue interval), withdrawn at shutdown.
        const declarer = new LimitsDeclarer(queueRegistry, this.workerId, queues, settings.lockDurationMs * DECLARATION_LEASE_FACTOR, settings.rescueIntervalMs);
        limitedAtBoot = await declarer.declareAtBoot();
        declarer.start();
        this.stoppables.push(declarer);
      })(),
      startScheduler(),
      listener?.start(),
    ]);
    startCleaner();
    const completer = new JobCompleter(repository, this.workerId);
    this.completer = completer;
    const activity = new JobActivity(repository, this.workerId, this.lifecycle);
    this.activity = activity;
    const executor = new JobExecutor(
      this.registry,
      repository,
      completer,
      this.running,
      this.workerId,
      settings.lockDurationMs,
      settings.unknownJobGraceMs,
      this.lifecycle,
      activity,
      this.tracing,
    );
    const runner: ClaimedJobRunner = {
      admit: (job, claimedAt) => executor.admit(job, claimedAt),
      run: (entry, hooks, claimedAt) => {
        const attempt = executor.execute(entry.job, hooks, claimedAt, entry);
        this.inflight++;
        void attempt.then(() => {
          this.inflight--;
          this.notifyWaiters();
        });
      },
      handBack: (entry) => this.handBack(entry),
      drop: (entry) => this.running.delete(entry),
      writeOutcome: (outcome) => completer.record(outcome),
    };
    for (const registered of queues) {
      const poller = new QueuePoller(
        {
          queue: registered.queue,
          concurrency: registered.options.concurrency ?? DEFAULT_CONCURRENCY,
          workerId: this.workerId,
          lockDurationMs: settings.lockDurationMs,
          pollIntervalMs: settings.pollIntervalMs,
          defaults: claimDefaultsOf(this.options, registered),
          claimAhead: settings.claimAhead,
          limitedAtBoot: limitedAtBoot?.has(registered.queue),
        },
        repository,
        runner,
      );
      this.pollers.set(registered.queue, poller);
    }

    const keeper = new LeaseKeeper(repository, this.running, this.workerId, settings.lockDurationMs, settings.heartbeatIntervalMs);
    const rescuer = new LeaseRescuer(repository, settings.rescueIntervalMs, this.lifecycle);
    const probe = new IdleQueueProbe(repository, this.pollers, settings.pollIntervalMs);
    this.keeper = keeper;
    keeper.start();
    rescuer.start();
    firstRuns.set('rescue', () => rescuer.runOnce());
    this.stoppables.push(keeper, rescuer, probe);
    // Limits: forgets group rate-limit rows that no longer matter.
    const janitor = new GroupJanitor(repository);
    janitor.start();
    this.stoppables.push(janitor);
    for (const poller of this.pollers.values()) poller.start();
    probe.start();
    void this.runAfterFirstClaims(firstRuns);
    this.logger.log(`Worker ${this.workerId} processing ${[...this.pollers.keys()].map((q) => `"${q}"`).join(', ')}`);
  }

  /**
   * Runs the maintenance's first runs once every poller's first claim is back (or after
   * FIRST_CLAIMS_WAIT_MS), unless the worker is stopping by then.
   *
   * NOTE: at the same moment as the first claims, they took connections of the worker's pool that
   * the claims and the boot's statements needed: the pool opened two more while the first claim
   * waited behind a rescue (measured in the drain bench: the pollers started 48-50 ms into the
   * boot, the first claim took 12 ms). None of them is urgent to the millisecond: a rescue, a
   * retention pass, the schedules' first look (due slots are enqueued a few milliseconds later).
   */
  private async runAfterFirstClaims(runs: FirstRuns): Promise<void> {
    await withTimeout(Promise.all([...this.pollers.values()].map((p) => p.firstClaim)), FIRST_CLAIMS_WAIT_MS);
    for (const task of FIRST_RUN_ORDER) {
      if (this.stopping !== undefined || !this.started) return;
      // NOTE: one after the other (none rejects): one more connection at most, not one each. The
      // schedules' enqueuer only starts (its cycles run on their own), so it comes last.
      await runs.get(task)?.();
    }
  }

  /** The LISTEN connection's listener: wake-ups, cancel and pause notices (started by `start`). */
  private createListener(repository: JobRepository): JobNotificationListener {
    const listener = new JobNotificationListener(repository, {
      onNotification: (n) => this.onNotification(n),
      onConnected: () => {
        this.pollers.forEach((p) => p.wake());
        this.scheduler?.wake();
      },
    });
    this.stoppables.push(listener);
    this.listener = listener;
    return listener;
  }

  /**
   * For the health indicator: whether this process runs a worker (`worker` is not false), whether
   * it is started and not stopping, and whether its LISTEN connection is up (null when it has none:
   * `listen: false`, or no processor in this process).
   */
  status(): { enabled: boolean; running: boolean; listening: boolean | null } {
    if (this.options.worker === false) return { enabled: false, running: false, listening: null };
    const running = this.started && this.stopping === undefined;
    // NOTE: a worker with no processor here opens no LISTEN connection.
    const listens = this.options.worker.listen && this.pollers.size > 0;
    return { enabled: true, running, listening: listens ? running && this.listener?.listening === true : null };
  }

  /**
   * Hands a job claimed ahead and never started back to pending, its attempt refunded, through the
   * completer (so shutdown's final drain covers it). It stays in the running set, its lease renewed,
   * until the write is done; fenced out, it was not ours any more (cancelled, rescued).
   */
  private handBack(entry: RunningJob): void {
    // NOTE: it never ran: nothing for shutdown to wait for or abort.
    entry.handlerDone = true;
    const { job } = entry;
    void this.completer!
      .record({ id: job.id, claim: job.claims, state: 'pending', result: null, error: null, delayMs: 0, refund: true })
      .then(() => this.running.delete(entry));
  }

  /**
   * Per queue, how long jobs claimed ahead waited for a slot, and the figures the buffer is sized by.
   * @internal diagnostics (the benchmark and tests), not a stable API.
   */
  claimAheadStats(): Record<string, QueuePoller['bufferStats']> {
    return Object.fromEntries([...this.pollers].map(([queue, poller]) => [queue, poller.bufferStats]));
  }

  /** Resolves once no attempt is in flight. */
  private whenIdle(): Promise<void> {
    return this.waitUntil(() => this.inflight === 0);
  }

  /**
   * Resolves once every attempt still in flight is one that shutdown abandoned (its handler ignores
   * its signal and still runs; nothing will be written for it).
   */
  private whenOnlyAbandonedLeft(): Promise<void> {
    return this.waitUntil(() => this.inflight === this.running.all().filter((r) => r.abandoned).length);
  }

  private waitUntil(condition: () => boolean): Promise<void> {
    if (condition()) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push({ condition, resolve }));
  }

  private notifyWaiters(): void {
    if (this.idleWaiters.length === 0) return;
    this.idleWaiters = this.idleWaiters.filter((w) => {
      if (!w.condition()) return true;
      w.resolve();
      return false;
    });
  }

  private onNotification(notification: JobNotification): void {
    if (notification.type === 'job') this.pollers.get(notification.queue)?.wake(notification.inMs);
    // A process started listening to global events: re-read who listens now, not at the next poll.
    else if (notification.type === 'listeners') this.eventDemand.refreshSoon();
    else if (notification.type === 'schedule') this.scheduler?.wake(notification.inMs);
    else if (notification.type === 'flow') this.flowEvents?.tell(notification);
    else if (notification.type === 'pause') this.pollers.get(notification.queue)?.handBackBuffered();
    // NOTE: only a hint (anyone who can connect can NOTIFY): it makes the lease keeper check the
    // rows now, and the row decides; a notice for a job not running here costs nothing.
    else if (this.running.has(notification.id)) void this.keeper?.check();
  }

  /**
   * Graceful shutdown: stop claiming, let running jobs finish for up to `shutdownTimeoutMs`, abort
   * the rest, and hand back (attempt not counted) those whose handler returns within
   * SHUTDOWN_ABORT_GRACE_MS; the others keep their lease, which is no longer renewed, and are
   * rescued when it lapses (attempt counted), so they never run twice at once. Then write the
   * outcomes (FINAL_WRITE_GRACE_MS at most when the database is unreachable).
   */
  stop(): Promise<void> {
    this.stopping ??= this.doStop();
    return this.stopping;
  }

  private async doStop(): Promise<void> {
    if (!this.started || this.options.worker === false) return;
    const { shutdownTimeoutMs } = this.options.worker;
    this.unsubscribe?.();
    this.unsubscribePauses?.();
    await Promise.all([...this.pollers.values()].map((p) => p.stop()));
    if (this.inflight > 0) {
      this.logger.log(`Shutting down: waiting up to ${shutdownTimeoutMs} ms for ${this.inflight} running job(s)`);
      await withTimeout(this.whenIdle(), shutdownTimeoutMs);
    }
    const left = this.running.all().filter((r) => !r.handlerDone);
    if (left.length > 0) {
      this.logger.warn(`Shutting down: ${left.length} job(s) still running after ${shutdownTimeoutMs} ms are aborted; those that stop within ${SHUTDOWN_ABORT_GRACE_MS} ms are handed back to pending`);
      for (const r of left) r.abort.abort(new WorkerShutdownError(shutdownTimeoutMs));
      await withTimeout(this.waitUntil(() => left.every((r) => r.handlerDone || r.removed)), SHUTDOWN_ABORT_GRACE_MS);
      const stuck = left.filter((r) => !r.handlerDone && !r.removed);
      for (const r of stuck) r.abandoned = true;
      if (stuck.length > 0) {
        this.logger.warn(
          `Shutting down: ${stuck.length} job(s) ignore their abort signal and still run (${stuck.slice(0, 10).map((r) => r.job.id).join(', ')}): ` +
            'they are not handed back; their lease is no longer renewed and they will be rescued when it lapses (attempt counted)',
        );
      }
      // NOTE: one turn of the event loop, so an attempt whose handler returned just now records its
      // outcome before the completer is drained.
      await new Promise((resolve) => setImmediate(resolve));
    }
    await this.completer?.drain(Date.now() + FINAL_WRITE_GRACE_MS);
    await this.activity?.drain();
    await this.whenOnlyAbandonedLeft();
    // NOTE: at once, each bounded by queryTimeoutMs (or the listener's own end grace).
    await Promise.all(this.stoppables.map((s) => s.stop()));
    this.stoppables = [];
    // After the final writes: nothing of the worker's uses its pool any more.
    await this.database.repository.closeWorkerPool();
    this.started = false;
  }
}

/**
 * Awaits every step, settled or not, then throws the first failure (in the order given): a boot
 * step that fails leaves none of the others still running unseen.
 */
async function settleAll(steps: (Promise<void> | undefined)[]): Promise<void> {
  const results = await Promise.allSettled(steps);
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
}
