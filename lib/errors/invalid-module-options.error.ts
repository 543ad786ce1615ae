import { QueueError } from './queue.error';

/** `QueueModule.forRoot()` options, or `@Processor()` options, are not valid. The app fails to boot. */
export class InvalidModuleOptionsError extends QueueError {
  constructor(
    readonly option: string,
    readonly value: unknown,
    expected: string,
  ) {
    super(`Invalid queue option ${option}: ${JSON.stringify(value) ?? String(value)}; expected ${expected}`);
  }
}
