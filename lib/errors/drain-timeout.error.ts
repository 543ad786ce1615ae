import { QueueError } from './queue.error';

/** `drain()` (nestjs-pg-queue/testing) still had jobs to run or wait for when its `timeoutMs` ran out. */
export class DrainTimeoutError extends QueueError {
  constructor(
    readonly queues: string[],
    readonly timeoutMs: number,
    /** What the drain had done by then. */
    readonly summary: { completed: number; failed: number; retried: number },
  ) {
    super(
      `drain(${queues.map((q) => JSON.stringify(q)).join(', ')}) did not finish within ${timeoutMs} ms ` +
        `(completed ${summary.completed}, failed ${summary.failed}, retried ${summary.retried}); ` +
        'a handler may hang, jobs may keep enqueueing jobs, or another worker holds active jobs',
    );
  }
}
