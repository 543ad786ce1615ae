import { QueueError } from './queue.error';

/** A `@Handle` method sits in a class that has no `@Processor`: it would never run. The app fails to boot. */
export class HandleWithoutProcessorError extends QueueError {
  constructor(
    readonly className: string,
    readonly methodName: string,
  ) {
    super(`${className}.${methodName} has @Handle() but ${className} has no @Processor(queue) decorator`);
  }
}
