import { Injectable } from '@nestjs/common';
import { CATCH_ALL_HANDLER } from '../queue.constants';
import { DuplicateHandlerError } from '../errors/duplicate-handler.error';
import { ConflictingProcessorOptionsError } from '../errors/conflicting-processor-options.error';
import type { ActiveJob } from '../interfaces/job.interface';
import type { ProcessorOptions } from '../interfaces/processor-options.interface';
import { canonicalJson } from '../limits/queue-limits';

/** A bound handler: the DI-managed instance's method. */
export type JobHandler = (job: ActiveJob) => unknown;

/** A queue this process runs: its processor's options and its handlers by job name. */
export interface RegisteredQueue {
  queue: string;
  processorName: string;
  options: ProcessorOptions;
  handlers: Map<string, { fn: JobHandler; owner: string }>;
  /** Which class declared each of `options`' keys (for error messages). */
  declaredBy: Map<string, string>;
}

/** The processors and handlers found at boot, keyed by queue. */
@Injectable()
export class HandlerRegistry {
  private readonly queues = new Map<string, RegisteredQueue>();

  addProcessor(queue: string, processorName: string, options: ProcessorOptions): RegisteredQueue {
    const existing = this.queues.get(queue);
    if (!existing) {
      // A copy: merging must not write into another class's decorator metadata.
      const registered: RegisteredQueue = { queue, processorName, options: { ...options }, handlers: new Map(), declaredBy: new Map() };
      for (const key of Object.keys(options)) registered.declaredBy.set(key, processorName);
      this.queues.set(queue, registered);
      return registered;
    }
    // NOTE: several classes may process one queue (split by job name). The queue's options hold for
    // all of its jobs, so they are merged explicitly: an option declared by one class only applies to
    // the queue; declared by two with different values, the boot fails rather than let discovery
    // order pick one. Values are compared with keys sorted: `rateLimit: { perMs, max }` and
    // `{ max, perMs }` agree.
    for (const [key, value] of Object.entries(options) as [keyof ProcessorOptions, unknown][]) {
      if (value === undefined) continue;
      const known = existing.options[key];
      if (known === undefined) {
        (existing.options as Record<string, unknown>)[key] = value;
        existing.declaredBy.set(key, processorName);
      } else if (canonicalJson(known) !== canonicalJson(value)) {
        throw new ConflictingProcessorOptionsError(queue, key, { processor: existing.declaredBy.get(key) ?? existing.processorName, value: known }, { processor: processorName, value });
      }
    }
    return existing;
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
