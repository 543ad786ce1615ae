import { QueueError } from './queue.error';

/** `data` (or a handler's result) cannot be stored as JSON and read back unchanged. */
export class InvalidJobDataError extends QueueError {
  constructor(
    /** Where in the value the problem is, e.g. `data.user.id`. */
    readonly path: string,
    /** What is wrong there. */
    readonly problem: string,
    rule = 'job data must survive a JSON round trip',
  ) {
    super(`${path} ${problem}: ${rule}`);
  }
}
