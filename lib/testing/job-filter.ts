import { isDeepStrictEqual } from 'node:util';
import type { Job, JobState } from '../interfaces/job.interface';

/** Which jobs `enqueued()` / `expectEnqueued()` look for. Every field is optional. */
export interface JobFilter {
  queue?: string;
  name?: string;
  /** Matched as a deep partial: every property given must be there with that value; others may be too. */
  data?: unknown;
  /** One state or several; any state when left out. */
  state?: JobState | `${JobState}` | (JobState | `${JobState}`)[];
}

/** Is `actual` a deep superset of `expected`? Arrays must match element by element, in full length. */
export function matchesPartially(actual: unknown, expected: unknown): boolean {
  if (expected === null || typeof expected !== 'object') return isDeepStrictEqual(actual, expected);
  if (expected instanceof Date) return actual === expected.toISOString() || isDeepStrictEqual(actual, expected);
  if (Array.isArray(expected)) {
    return Array.isArray(actual) && actual.length === expected.length && expected.every((item, i) => matchesPartially(actual[i], item));
  }
  if (actual === null || typeof actual !== 'object' || Array.isArray(actual)) return false;
  return Object.entries(expected).every(([key, value]) => value === undefined || matchesPartially((actual as Record<string, unknown>)[key], value));
}

export function matchesFilter(job: Job, filter: JobFilter): boolean {
  if (filter.state !== undefined) {
    const states: string[] = Array.isArray(filter.state) ? filter.state : [filter.state];
    if (!states.includes(job.state)) return false;
  }
  return filter.data === undefined || matchesPartially(job.data, filter.data);
}

/** One line per job, for failure messages: `#12 email/welcome pending {"to":"ada@example.com"}`. */
export function describeJobs(jobs: Job[], limit = 20): string {
  if (jobs.length === 0) return '  (no jobs)';
  const lines = jobs.slice(0, limit).map((job) => `  #${job.id} ${job.queue}/${job.name} ${job.state} ${truncate(JSON.stringify(job.data))}`);
  if (jobs.length > limit) lines.push(`  … and ${jobs.length - limit} more`);
  return lines.join('\n');
}

function truncate(text: string | undefined, max = 200): string {
  const value = text ?? 'undefined';
  return value.length > max ? `${value.slice(0, max)}…` : value;
}
