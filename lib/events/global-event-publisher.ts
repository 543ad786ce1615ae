import { Injectable, Logger, type BeforeApplicationShutdown } from '@nestjs/common';
import { JobLifecycle, type JobLifecycleEvent } from '../worker/job-lifecycle';
import { QueueWorker } from '../worker/worker.service';
import { GlobalEventDemand } from './global-event-demand';
import { JobEventsStore } from './job-events.store';
import { packWireEvents, publicTypesOf, toWireEvent } from './queue-event.mapper';
import type { WireJobEvent } from '../database/job-notification.listener';
import type { Job } from '../interfaces/job.interface';

/**
 * Sends this process's job events to the global listeners of every process, through NOTIFY on the
 * table's channel, but only the types some process listens to (see {@link GlobalEventDemand}):
 * with nobody listening globally it is not even subscribed to the lifecycle hub. Events are sent in
 * batches: the events of one turn of the event loop (a whole completion write's) in one statement,
 * as ids and names, never results, so a payload stays far below PostgreSQL's 8,000-byte limit.
 * A failed send is logged and not retried (global events are at most once).
 */
@Injectable()
export class GlobalEventPublisher implements BeforeApplicationShutdown {
  private readonly logger = new Logger('QueueEvents');
  private unsubscribe?: () => void;
  private pending: WireJobEvent[] = [];
  private sending?: Promise<void>;

  constructor(
    private readonly lifecycle: JobLifecycle,
    private readonly demand: GlobalEventDemand,
    private readonly store: JobEventsStore,
    private readonly worker: QueueWorker,
  ) {
    // NOTE: in the constructor, so no change is missed: the worker reads the demand during boot
    // (a process that runs jobs watches it; a producer reads it when it cancels, see
    // `publishCancelled`).
    this.demand.onChange(() => this.follow());
  }

  async beforeApplicationShutdown(): Promise<void> {
    // NOTE: Nest runs the providers' shutdown hooks at once: the worker's final writes are waited
    // for here (stop() is idempotent), so their events still go out before TypeORM closes.
    await this.worker.stop();
    await new Promise((resolve) => setImmediate(resolve));
    while (this.sending) await this.sending;
  }

  /** Tells the global listeners that this process cancelled `job`. */
  async publishCancelled(job: Job): Promise<void> {
    await this.demand.ensureFresh();
    if (!this.demand.wants('cancelled')) return;
    this.enqueue(toWireEvent({ type: 'cancelled', job, at: Date.now() }, 'cancelled'));
  }

  /** Subscribed to the hub while some process listens globally, not otherwise. */
  private follow(): void {
    if (this.demand.any && !this.unsubscribe) this.unsubscribe = this.lifecycle.subscribe((event) => this.onLifecycle(event));
    else if (!this.demand.any && this.unsubscribe) {
      this.unsubscribe();
      this.unsubscribe = undefined;
    }
  }

  private onLifecycle(event: JobLifecycleEvent): void {
    // NOTE: cancellations are sent by `publishCancelled`, in producer processes too.
    if (event.type === 'cancelled') return;
    for (const type of publicTypesOf(event)) if (this.demand.wants(type)) this.enqueue(toWireEvent(event, type));
  }

  private enqueue(event: WireJobEvent): void {
    this.pending.push(event);
    // NOTE: the first batch waits for the end of this turn (the rest of a completion write's
    // events); later ones gather while a send is in flight.
    this.sending ??= new Promise<void>((resolve) => setImmediate(resolve)).then(() => this.send());
  }

  private async send(): Promise<void> {
    try {
      while (this.pending.length > 0) {
        const batch = this.pending;
        this.pending = [];
        try {
          await (await this.store.get()).notify(packWireEvents(batch));
        } catch (error) {
          this.logger.warn(`Could not send ${batch.length} global job event(s): ${(error as Error)?.message ?? error}; they are lost (global events are at most once)`);
        }
      }
    } finally {
      this.sending = undefined;
    }
  }
}
