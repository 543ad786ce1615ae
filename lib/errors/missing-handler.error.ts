import { QueueError } from './queue.error';

/**
 * Recorded as the `lastError` of a job whose queue has a processor in the worker that claimed it but
 * no handler for its name. Such a job fails at once; retrying cannot help until the code changes.
 */
export class MissingHandlerError extends QueueError {
  constructor(
    readonly queue: string,
    readonly jobName: string,
  ) {
    super(`No handler for job "${jobName}" in queue "${queue}": add @Handle('${jobName}') (or a catch-all @Handle()) to its processor`);
  }
}
