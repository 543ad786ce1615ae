import { QueueError } from './queue.error';

/** An `@OnQueueEvent` has a bad event type or option. The app fails to boot. */
export class InvalidQueueEventListenerError extends QueueError {
  constructor(
    /** `Class.method` that carries the decorator. */
    readonly listener: string,
    /** What is at fault: `type`, `queue`, `scope`, or an unknown option's name. */
    readonly option: string,
    readonly value: unknown,
    expected: string,
  ) {
    super(`@OnQueueEvent on ${listener}: invalid ${option} ${JSON.stringify(value) ?? String(value)}; expected ${expected}`);
  }
}
