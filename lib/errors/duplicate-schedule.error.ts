import { QueueError } from './queue.error';

/** Two `@Schedule` declarations use the same schedule key. The app fails to boot. */
export class DuplicateScheduleError extends QueueError {
  constructor(
    readonly key: string,
    readonly first: string,
    readonly second: string,
  ) {
    super(`Two @Schedule declarations with key ${JSON.stringify(key)}: ${first} and ${second}; give one of them another key ({ key })`);
  }
}
