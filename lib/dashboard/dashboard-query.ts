import { JobState } from '../interfaces/job.interface';
import type { JobFilter, JobSort } from '../interfaces/job-admin.interface';
import { DashboardBadRequestException } from './dashboard-http.errors';

/** The job list's filter as it appears in the URL (bookmarkable), and as the API takes it. */
export interface JobListQuery {
  queue: string;
  state: string;
  name: string;
  /** The search box: `data.path:value` terms and free text (an id, or text of the last error). */
  q: string;
  sort: JobSort;
  /** The cursor of this page ('' for the first). */
  after: string;
  /** The cursors of the pages before this one (for "newer"), oldest first. */
  back: string[];
  filter: JobFilter;
}

const SORTS: JobSort[] = ['newest', 'oldest', 'nextToRun', 'lastFinished'];
const STATES = Object.values(JobState) as string[];
/** "newer" remembers at most this many pages back (the "newest" link always leads to the first). */
const MAX_BACK = 30;
const TERM = /(data\.[^\s:]+):("(?:[^"\\]|\\.)*"|\S+)|"((?:[^"\\]|\\.)*)"|(\S+)/g;

/** One query-string value as a string (a repeated parameter is refused). */
export function single(query: Record<string, unknown>, key: string): string {
  const value = query[key];
  if (value === undefined) return '';
  if (typeof value !== 'string') throw new DashboardBadRequestException(`Invalid ${key}: give it once, as text`);
  return value;
}

/** Parses the job list's query string; a malformed part is a 400 naming it. */
export function parseJobListQuery(query: Record<string, unknown>): JobListQuery {
  const queue = single(query, 'queue');
  const state = single(query, 'state');
  const name = single(query, 'name');
  const q = single(query, 'q').trim();
  const sortText = single(query, 'sort') || 'newest';
  const after = single(query, 'after');
  const rawBack = query.back === undefined ? [] : Array.isArray(query.back) ? query.back : [query.back];
  if (!rawBack.every((b): b is string => typeof b === 'string')) throw new DashboardBadRequestException('Invalid back: expected cursors');
  if (!SORTS.includes(sortText as JobSort)) throw new DashboardBadRequestException(`Invalid sort: expected one of ${SORTS.join(', ')}`);
  if (state && !STATES.includes(state)) throw new DashboardBadRequestException(`Invalid state ${JSON.stringify(state)}: expected one of ${STATES.join(', ')}`);
  const filter: JobFilter = {};
  if (queue) filter.queue = queue;
  if (state) filter.state = state as JobState;
  if (name) filter.name = name;
  Object.assign(filter, parseSearch(q));
  return { queue, state, name, q, sort: sortText as JobSort, after, back: rawBack.slice(-MAX_BACK), filter };
}

/**
 * The search box: each `data.a.b:value` term adds `{ a: { b: value } }` to the data filter (value
 * read as JSON when it is JSON, else as a string: `data.id:7` is the number, `data.id:"7"` the
 * string); the other words, joined, are the text search.
 */
export function parseSearch(q: string): Pick<JobFilter, 'search' | 'data'> {
  const words: string[] = [];
  let data: Record<string, unknown> | undefined;
  for (const match of q.matchAll(TERM)) {
    const [, path, rawValue, quoted, word] = match;
    if (path !== undefined) {
      const segments = path.slice('data.'.length).split('.');
      if (segments.some((s) => s === '')) throw new DashboardBadRequestException(`Invalid filter ${JSON.stringify(path)}: a data path is names joined by dots`);
      data = merge(data ?? {}, nest(segments, parseValue(path, rawValue)), path);
    } else {
      words.push(quoted !== undefined ? quoted : word);
    }
  }
  const result: Pick<JobFilter, 'search' | 'data'> = {};
  if (words.length > 0) result.search = words.join(' ');
  if (data) result.data = data;
  return result;
}

function parseValue(path: string, raw: string): unknown {
  try {
    return JSON.parse(raw);
  } catch (error) {
    // NOTE: what looks like JSON must be JSON: `data.x:{"a":1` is a typo, not the string `{"a":1`.
    if (/^[[{"]/.test(raw)) throw new DashboardBadRequestException(`Invalid JSON in ${path}: ${(error as Error).message}`);
    return raw;
  }
}

function nest(segments: string[], value: unknown): Record<string, unknown> {
  return segments.reduceRight<Record<string, unknown>>((inner, key, i) => (i === segments.length - 1 ? { [key]: value } : { [key]: inner }), {});
}

function merge(into: Record<string, unknown>, from: Record<string, unknown>, path: string): Record<string, unknown> {
  for (const [key, value] of Object.entries(from)) {
    const existing = into[key];
    if (existing === undefined) into[key] = value;
    else if (isPlainObject(existing) && isPlainObject(value)) merge(existing, value, path);
    else throw new DashboardBadRequestException(`Invalid filter ${JSON.stringify(path)}: it gives ${key} two values`);
  }
  return into;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The URL query of a job list (for links: paging, sorting, states). */
export function jobListHref(base: string, query: Pick<JobListQuery, 'queue' | 'state' | 'name' | 'q' | 'sort'> & { after?: string; back?: string[] }): string {
  const params = new URLSearchParams();
  if (query.queue) params.set('queue', query.queue);
  if (query.state) params.set('state', query.state);
  if (query.name) params.set('name', query.name);
  if (query.q) params.set('q', query.q);
  if (query.sort && query.sort !== 'newest') params.set('sort', query.sort);
  if (query.after) params.set('after', query.after);
  for (const b of query.back ?? []) params.append('back', b);
  const text = params.toString();
  return `${base}/jobs${text ? `?${text}` : ''}`;
}
