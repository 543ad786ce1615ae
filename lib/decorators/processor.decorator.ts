import { Injectable, SetMetadata, applyDecorators } from '@nestjs/common';
import { PROCESSOR_METADATA } from '../queue.constants';
import type { ProcessorOptions } from '../interfaces/processor-options.interface';

/** What `@Processor()` stores on its class. */
export interface ProcessorMetadata {
  queue: string;
  options: ProcessorOptions;
}

/**
 * Marks a provider as the processor of a queue. Its `@Handle()` methods run that queue's jobs; the
 * instance is the one Nest's DI made, so constructor injection works as usual. Add the class to a
 * module's `providers`.
 *
 * @example
 * ```ts
 * @Processor('email', { concurrency: 10 })
 * export class EmailProcessor {
 *   @Handle('welcome') welcome(job: Job<{ to: string }>) { ... }
 * }
 * ```
 */
export function Processor(queue: string, options: ProcessorOptions = {}): ClassDecorator {
  return applyDecorators(SetMetadata(PROCESSOR_METADATA, { queue, options } satisfies ProcessorMetadata), Injectable());
}
