import { QueueError } from './queue.error';

/** The reason of `job.signal` when the worker shut down before the job finished. */
export class WorkerShutdownError extends QueueError {
  constructor(readonly shutdownTimeoutMs: number) {
    super(`Worker shut down: the job did not finish within shutdownTimeoutMs (${shutdownTimeoutMs} ms) and goes back to pending`);
  }
}
