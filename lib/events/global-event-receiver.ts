import { Inject, Injectable, Logger, type BeforeApplicationShutdown, type OnApplicationBootstrap } from '@nestjs/common';
import { JobNotificationListener, type WireJobEvent } from '../database/job-notification.listener';
import { QueueDatabase } from '../database/queue-database';
import { QueueEventListeners } from './queue-event-listeners';
import { JobEventsStore } from './job-events.store';
import { eventCode, fromWireEvent } from './queue-event.mapper';
import type { QueueEvent, QueueEventType } from '../interfaces/queue-event.interface';
import { RESOLVED_QUEUE_OPTIONS } from '../queue.constants';
import type { ResolvedQueueOptions } from '../queue-options.resolver';

/** The types a waiter for a job's end listens to. */
const FINISHING_TYPES: readonly QueueEventType[] = ['completed', 'failed', 'cancelled'];

/**
 * Receives the global job events of every process: one LISTEN connection of its own, opened only
 * when this process has a `scope: 'global'` listener or a `waitForJob()` in progress. While some
 * type is wanted, that connection holds this process's presence for it (a shared advisory lock,
 * which dies with the connection), which is how writers know to send it; on every reconnection the
 * presence is taken again and writers are told (`listeners` notification). Events sent while the
 * connection is down are missed: global events are at most once per process.
 */
@Injectable()
export class GlobalEventReceiver implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly logger = new Logger('QueueEvents');
  private listener?: JobNotificationListener;
  private started?: Promise<void>;
  /** How many holders want each type code. */
  private readonly wanted = new Map<number, number>();
  /** The type codes whose presence lock the connection holds. */
  private readonly held = new Set<number>();
  private presence: Promise<void> = Promise.resolve();
  private readonly watchers = new Map<string, Set<(event: QueueEvent) => void>>();
  private stopped = false;

  constructor(
    @Inject(RESOLVED_QUEUE_OPTIONS) private readonly options: ResolvedQueueOptions,
    private readonly database: QueueDatabase,
    private readonly store: JobEventsStore,
    private readonly listeners: QueueEventListeners,
  ) {}

  /** False when the module was told not to LISTEN (`worker.listen: false`, e.g. behind PgBouncer). */
  get enabled(): boolean {
    return this.options.worker === false || this.options.worker.listen;
  }

  async onApplicationBootstrap(): Promise<void> {
    const types = this.listeners.types('global');
    if (types.length === 0) return;
    if (!this.enabled) {
      this.logger.warn(`Global @OnQueueEvent listeners (${types.join(', ')}) never fire with worker.listen: false: global events travel by LISTEN/NOTIFY`);
      return;
    }
    this.want(types);
    // NOTE: the boot ends with the presence held and announced (when the database answers), so
    // writers that LISTEN know of this process's listeners right after.
    await this.started;
    await this.presence;
  }

  async beforeApplicationShutdown(): Promise<void> {
    this.stopped = true;
    await this.started?.catch(() => undefined);
    await this.listener?.stop();
    this.listener = undefined;
  }

  /**
   * Calls `onEvent` with the global `completed`, `failed` and `cancelled` events of job `id` until
   * the returned function is called (which leaves nothing behind). Returns null when disabled.
   */
  watch(id: string, onEvent: (event: QueueEvent) => void): (() => void) | null {
    if (!this.enabled || this.stopped) return null;
    let set = this.watchers.get(id);
    if (!set) this.watchers.set(id, (set = new Set()));
    set.add(onEvent);
    const release = this.want(FINISHING_TYPES);
    return () => {
      const current = this.watchers.get(id);
      current?.delete(onEvent);
      if (current?.size === 0) this.watchers.delete(id);
      release();
    };
  }

  /** How many `watch()` registrations are open (for tests: none once every wait settled). */
  get openWatches(): number {
    let n = 0;
    for (const set of this.watchers.values()) n += set.size;
    return n;
  }

  /** Takes presence for `types` (counted), connecting if needed; returns the release. */
  private want(types: readonly QueueEventType[]): () => void {
    for (const type of types) this.wanted.set(eventCode(type), (this.wanted.get(eventCode(type)) ?? 0) + 1);
    this.started ??= this.start().catch((error: unknown) => {
      // NOTE: the repository could not be had (the database is away at boot): the next want()
      // tries again; a waitForJob polls meanwhile.
      this.started = undefined;
      this.logger.warn(`Cannot listen for global job events: ${(error as Error)?.message ?? error}`);
    });
    void this.syncPresence();
    let released = false;
    return () => {
      if (released) return;
      released = true;
      for (const type of types) {
        const code = eventCode(type);
        const left = (this.wanted.get(code) ?? 1) - 1;
        if (left > 0) this.wanted.set(code, left);
        else this.wanted.delete(code);
      }
      void this.syncPresence();
    };
  }

  private async start(): Promise<void> {
    const repository = await this.database.getRepository();
    if (this.stopped) return;
    this.listener = new JobNotificationListener(repository, {
      onNotification: () => undefined,
      onConnected: () => {
        // NOTE: a new session holds no lock: take every wanted one again.
        this.held.clear();
        void this.syncPresence();
      },
      onEvents: (events) => this.onEvents(events),
    });
    await this.listener.start();
  }

  /**
   * Brings the held presence locks in line with the wanted types, one change at a time (chained),
   * and tells writers when a type was added.
   */
  private syncPresence(): Promise<void> {
    this.presence = this.presence.then(async () => {
      const listener = this.listener;
      if (!listener || this.stopped) return;
      const store = await this.store.get();
      let added = false;
      try {
        for (const code of this.wanted.keys()) {
          if (this.held.has(code)) continue;
          if (!(await listener.run(store.statements.listen, [store.presenceKey, code]))) return;
          this.held.add(code);
          added = true;
        }
        for (const code of [...this.held]) {
          if (this.wanted.has(code)) continue;
          if (!(await listener.run(store.statements.unlisten, [store.presenceKey, code]))) return;
          this.held.delete(code);
        }
        if (added) await listener.run(store.statements.announce);
      } catch (error) {
        // NOTE: the connection is failing; the listener reconnects and onConnected syncs again.
        this.logger.warn(`Could not update this process's global event presence: ${(error as Error)?.message ?? error}`);
      }
    });
    return this.presence;
  }

  private onEvents(events: WireJobEvent[]): void {
    for (const wire of events) {
      const event = fromWireEvent(wire);
      if (!event) continue;
      if (this.listeners.wants('global', event.type, event.queue)) this.listeners.dispatch(event);
      const watchers = this.watchers.get(event.jobId);
      if (watchers) {
        for (const watcher of [...watchers]) {
          try {
            watcher(event);
          } catch (error) {
            this.logger.error(`A waiter of job ${event.jobId} threw: ${(error as Error)?.stack ?? error}`);
          }
        }
      }
    }
  }
}
