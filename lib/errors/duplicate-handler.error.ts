import { QueueError } from './queue.error';

/** Two `@Handle` methods claim the same (queue, job name). The app fails to boot. */
export class DuplicateHandlerError extends QueueError {
  constructor(
    readonly queue: string,
    readonly jobName: string | undefined,
    readonly first: string,
    readonly second: string,
  ) {
    const what = jobName === undefined ? `the catch-all handler of queue "${queue}"` : `job "${jobName}" of queue "${queue}"`;
    super(`Two handlers for ${what}: ${first} and ${second}`);
  }
}
