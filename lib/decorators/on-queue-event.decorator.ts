import { ON_QUEUE_EVENT_METADATA } from '../queue.constants';
import type { OnQueueEventOptions, QueueEventType } from '../interfaces/queue-event.interface';

/** One `@OnQueueEvent` of a method, as stored in its metadata. */
export interface QueueEventSubscription {
  type: QueueEventType;
  options: OnQueueEventOptions;
}

/**
 * Calls the decorated method of a provider (any provider, not only a `@Processor`) with a
 * {@link QueueEvent} each time a job has event `type`, in `options.queue` or any queue. Local scope
 * (the default) hears what this process wrote, once durable; global scope hears every process of
 * the table, through NOTIFY (see {@link OnQueueEventOptions}). The method may be async; it is never
 * awaited by the worker, and what it throws (or rejects with) is logged and otherwise ignored.
 * A method may carry several of these. Checked at boot: a bad type or option fails it.
 */
export function OnQueueEvent(type: QueueEventType, options: OnQueueEventOptions = {}): MethodDecorator {
  return (_target, _propertyKey, descriptor) => {
    const method = descriptor.value as object;
    const existing: QueueEventSubscription[] = Reflect.getMetadata(ON_QUEUE_EVENT_METADATA, method) ?? [];
    Reflect.defineMetadata(ON_QUEUE_EVENT_METADATA, [...existing, { type, options }], method);
    return descriptor;
  };
}
