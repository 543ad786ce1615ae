import { Injectable, Logger } from '@nestjs/common';
import type { QueueEvent, QueueEventScope, QueueEventType } from '../interfaces/queue-event.interface';

/** A discovered `@OnQueueEvent` method, bound to its instance. */
export interface QueueEventListener {
  type: QueueEventType;
  /** Only this queue's events; undefined: every queue. */
  queue?: string;
  scope: QueueEventScope;
  fn: (event: QueueEvent) => unknown;
  /** `Class.method`, for logs. */
  owner: string;
}

/**
 * The `@OnQueueEvent` listeners found at boot, by scope and type, and their calling: each in turn,
 * never awaited; what one throws or rejects with is logged and the others still run.
 */
@Injectable()
export class QueueEventListeners {
  private readonly logger = new Logger('QueueEvents');
  private readonly local = new Map<QueueEventType, QueueEventListener[]>();
  private readonly global = new Map<QueueEventType, QueueEventListener[]>();

  add(listener: QueueEventListener): void {
    const byType = listener.scope === 'global' ? this.global : this.local;
    byType.set(listener.type, [...(byType.get(listener.type) ?? []), listener]);
  }

  /** The event types some listener of `scope` wants. */
  types(scope: QueueEventScope): QueueEventType[] {
    return [...(scope === 'global' ? this.global : this.local).keys()];
  }

  /** Whether a listener of `scope` wants events of `type` in `queue`. */
  wants(scope: QueueEventScope, type: QueueEventType, queue: string): boolean {
    const listeners = (scope === 'global' ? this.global : this.local).get(type);
    return listeners !== undefined && listeners.some((l) => l.queue === undefined || l.queue === queue);
  }

  /** Calls every listener of the event's scope, type and queue. Never throws. */
  dispatch(event: QueueEvent): void {
    const listeners = (event.scope === 'global' ? this.global : this.local).get(event.type);
    if (!listeners) return;
    for (const listener of listeners) {
      if (listener.queue !== undefined && listener.queue !== event.queue) continue;
      try {
        const returned = listener.fn(event);
        if (returned !== null && typeof (returned as PromiseLike<unknown>)?.then === 'function') {
          // NOTE: not awaited: a slow listener must not hold up the next event, or the worker.
          Promise.resolve(returned).catch((error: unknown) => this.report(listener, event, error));
        }
      } catch (error) {
        this.report(listener, event, error);
      }
    }
  }

  private report(listener: QueueEventListener, event: QueueEvent, error: unknown): void {
    this.logger.error(`${listener.owner} threw on the ${event.scope} "${event.type}" event of job ${event.jobId}: ${(error as Error)?.stack ?? error}`);
  }
}
