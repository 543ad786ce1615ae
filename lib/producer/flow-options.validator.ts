import { InvalidJobOptionError } from '../errors/invalid-job-option.error';
import type { JobOptions } from '../interfaces/job-options.interface';

import { isJobId } from './job-id';

export { isJobId };
/** Most dependencies one `add()` may name. */
export const MAX_DEPENDENCIES = 1000;

/** `onChildFailure` of a flow job or of `add()`. */
export function assertOnChildFailure(option: string, value: unknown): void {
  if (value !== undefined && value !== 'fail' && value !== 'continue') throw new InvalidJobOptionError(option, value, "'fail' or 'continue'");
}

/** `dependsOn` and `onChildFailure` of `add()`. */
export function validateDependencyOptions(options: JobOptions): void {
  assertOnChildFailure('onChildFailure', options.onChildFailure);
  const deps = options.dependsOn;
  if (deps === undefined) throw new InvalidJobOptionError('onChildFailure', options.onChildFailure, 'onChildFailure only with dependsOn (or on a job of addFlow)');
  if (!Array.isArray(deps) || deps.length === 0 || deps.length > MAX_DEPENDENCIES) {
    throw new InvalidJobOptionError('dependsOn', deps, `an array of 1 to ${MAX_DEPENDENCIES} job ids`);
  }
  const seen = new Set<string>();
  deps.forEach((id, i) => {
    if (!isJobId(id)) throw new InvalidJobOptionError(`dependsOn[${i}]`, id, 'a job id: a string of digits from 1 to 9223372036854775807');
    if (seen.has(id)) throw new InvalidJobOptionError(`dependsOn[${i}]`, id, 'each id once');
    seen.add(id);
  });
  // NOTE: a unique add() may return an existing job (the key's holder) instead of a new one; giving
  // that one dependencies could close a cycle, so the two do not mix.
  if (options.unique !== undefined) throw new InvalidJobOptionError('dependsOn', deps, 'no dependsOn with unique');
}
