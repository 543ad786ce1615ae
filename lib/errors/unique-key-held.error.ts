import { QueueError } from './queue.error';

/**
 * `retry()` of a job would make it hold its unique key again, but another job of the queue holds
 * that key now. Nothing was changed; retry (or cancel) the holder instead, or try again once it is
 * finished.
 */
export class UniqueKeyHeldError extends QueueError {
  constructor(
    readonly jobId: string,
    readonly key: string,
    readonly holderId: string,
  ) {
    super(`Cannot retry job ${jobId}: its unique key ${JSON.stringify(key)} is held by job ${holderId}`);
  }
}
