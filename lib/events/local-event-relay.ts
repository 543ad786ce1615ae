import { Injectable, type OnApplicationBootstrap } from '@nestjs/common';
import { JobLifecycle, type JobLifecycleEvent } from '../worker/job-lifecycle';
import { QueueEventListeners } from './queue-event-listeners';
import { publicTypesOf, toLocalEvent } from './queue-event.mapper';
import type { QueueEvent } from '../interfaces/queue-event.interface';

/**
 * Tells this process's `scope: 'local'` listeners what the lifecycle hub tells (writes of this
 * process, once durable). Subscribed to the hub only when such a listener exists, so a process
 * without one costs the worker nothing (the hub's `active` check stays false). The listeners are
 * called on the next turn of the event loop, in batches, never on the worker's own path.
 */
@Injectable()
export class LocalEventRelay implements OnApplicationBootstrap {
  private pending: { event: JobLifecycleEvent; type: QueueEvent['type'] }[] = [];
  private scheduled = false;

  constructor(
    private readonly lifecycle: JobLifecycle,
    private readonly listeners: QueueEventListeners,
  ) {}

  onApplicationBootstrap(): void {
    if (this.listeners.types('local').length > 0) this.lifecycle.subscribe((event) => this.onLifecycle(event));
  }

  private onLifecycle(event: JobLifecycleEvent): void {
    for (const type of publicTypesOf(event)) {
      if (this.listeners.wants('local', type, event.job.queue)) this.pending.push({ event, type });
    }
    if (this.pending.length > 0 && !this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.flush());
    }
  }

  private flush(): void {
    const batch = this.pending;
    this.pending = [];
    this.scheduled = false;
    // NOTE: the JSON of results and errors is parsed here, off the worker's path, and only for
    // events someone listens to.
    for (const { event, type } of batch) this.listeners.dispatch(toLocalEvent(event, type));
  }
}
