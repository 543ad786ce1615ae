import { QueueError } from './queue.error';

/**
 * Two `@Processor` classes of one queue declare different values for the same option. A queue's
 * options hold for all its jobs, so they must agree (or be declared by one class only). The app
 * fails to boot.
 */
export class ConflictingProcessorOptionsError extends QueueError {
  constructor(
    readonly queue: string,
    readonly option: string,
    readonly first: { processor: string; value: unknown },
    readonly second: { processor: string; value: unknown },
  ) {
    super(
      `The processors ${first.processor} and ${second.processor} of queue "${queue}" declare different values of ${option}: ` +
        `${JSON.stringify(first.value)} and ${JSON.stringify(second.value)}. Declare the queue's options on one of them, or the same on both.`,
    );
  }
}
