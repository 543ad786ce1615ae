import { Injectable } from '@nestjs/common';
import { CATCH_ALL_HANDLER } from '../queue.constants';
import { DuplicateHandlerError } from '../errors/duplicate-handler.error';
import type { ActiveJob } from '../interfaces/job.interface';
import type { ProcessorOptions } from '../interfaces/processor-options.interface';

/** A bound handler: the DI-managed instance's method. */
export type JobHandler = (job: ActiveJob) => unknown;

/** A queue this process runs: its processor's options and its handlers by job name. */
export interface RegisteredQueue {
  queue: string;
  processorName: string;
  options: ProcessorOptions;
  handlers: Map<string, { fn: JobHandler; owner: string }>;
}

/** The processors and handlers found at boot, keyed by queue. */
@Injectable()
export class HandlerRegistry {
  private readonly queues = new Map<string, RegisteredQueue>();

  addProcessor(queue: string, processorName: string, options: ProcessorOptions): RegisteredQueue {
    const existing = this.queues.get(queue);
    if (existing) {
      // NOTE: two classes may process one queue (e.g. split by job name); their options must agree
      // on nothing but the handlers must not overlap. Concurrency is the larger of the two.
      existing.options = {
        ...existing.options,
        ...options,
        concurrency: Math.max(existing.options.concurrency ?? 1, options.concurrency ?? 1),
      };
      return existing;
    }
    const registered: RegisteredQueue = { queue, processorName, options, handlers: new Map() };
    this.queues.set(queue, registered);
    return registered;
  }

  addHandler(queue: string, jobName: string, fn: JobHandler, owner: string): void {
    const registered = this.queues.get(queue);
    if (!registered) throw new Error(`addHandler before addProcessor for queue ${queue}`);
    const clash = registered.handlers.get(jobName);
    if (clash) {
      throw new DuplicateHandlerError(queue, jobName === CATCH_ALL_HANDLER ? undefined : jobName, clash.owner, owner);
    }
    registered.handlers.set(jobName, { fn, owner });
  }

  /** The handler for a job: its named handler, else the queue's catch-all, else undefined. */
  resolve(queue: string, jobName: string): JobHandler | undefined {
    const handlers = this.queues.get(queue)?.handlers;
    return (handlers?.get(jobName) ?? handlers?.get(CATCH_ALL_HANDLER))?.fn;
  }

  getQueues(): RegisteredQueue[] {
    return [...this.queues.values()];
  }
}
