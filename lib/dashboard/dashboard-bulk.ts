import type { JobFilter, JobSelection } from '../interfaces/job-admin.interface';
import { DashboardBadRequestException } from './dashboard-http.errors';
import { field, many, parseJobId } from './dashboard-input';
import { parseJobListQuery } from './dashboard-query';
import { JobState } from '../interfaces/job.interface';
import { firstLine } from './dashboard-data.service';

/** The bulk actions the dashboard offers, with what the API calls them. */
export const BULK_ACTIONS = ['retry', 'cancel', 'delete', 'promote'] as const;
export type BulkAction = (typeof BULK_ACTIONS)[number];

/** Up to this many ids are acted on in the request; a filter ("all matching") runs as a background task. */
export const MAX_SELECTED_IDS = 1000;

/** A bulk action as the jobs page's form asks for it (a selection of ids, or every job matching its filter). */
export interface BulkRequest {
  action: BulkAction;
  selection: JobSelection;
  /** True for "all matching" (a filter), false for ids. */
  byFilter: boolean;
  /** The form fields to send again to confirm (and to go back to the list). */
  fields: [string, string][];
  /** The filter's URL parts, for the way back to the list. */
  list: { queue: string; state: string; name: string; q: string };
}

/** Reads a bulk action from the form (GET for the confirmation page, POST to run it); a 400 for a bad one. */
export function describeBulk(input: Record<string, unknown>): BulkRequest {
  const action = field(input, 'action') as BulkAction;
  if (!BULK_ACTIONS.includes(action)) throw new DashboardBadRequestException(`Invalid action: expected one of ${BULK_ACTIONS.join(', ')}`);
  const list = parseJobListQuery({ queue: input.queue, state: input.state, name: input.name, q: input.q });
  const listParts = { queue: list.queue, state: list.state, name: list.name, q: list.q };
  const fields: [string, string][] = [['action', action], ...Object.entries(listParts).filter(([, v]) => v !== '')];
  if (field(input, 'all') === '1') {
    const filter: JobFilter = list.filter;
    // NOTE: an empty filter would be every job of the table: the API refuses it, and so do we, with a clearer message.
    if (Object.keys(filter).length === 0) throw new DashboardBadRequestException('An action on all matching jobs needs a filter (a queue, a state, a name or a search)');
    fields.push(['all', '1']);
    return { action, selection: filter, byFilter: true, fields, list: listParts };
  }
  const ids = many(input, 'ids').map(parseJobId);
  if (ids.length === 0) throw new DashboardBadRequestException('Select at least one job (or "all matching")');
  if (ids.length > MAX_SELECTED_IDS) throw new DashboardBadRequestException(`Select at most ${MAX_SELECTED_IDS} jobs, or use "all matching"`);
  for (const id of ids) fields.push(['ids', id]);
  return { action, selection: { ids }, byFilter: false, fields, list: listParts };
}

/** A group of the failures page: the failed jobs of a queue and name whose last error contains `message`. */
export interface FailureGroupSelection {
  queue: string;
  name: string;
  message: string;
  selection: JobFilter;
}

/** Reads a failure group from the form (GET to confirm, POST to retry); a 400 without its queue and name. */
export function readFailureGroup(input: Record<string, unknown>): FailureGroupSelection {
  const queue = field(input, 'queue');
  const name = field(input, 'name');
  const message = firstLine(field(input, 'message'));
  if (!queue || !name) throw new DashboardBadRequestException('A failure group needs its queue and name');
  return { queue, name, message, selection: { queue, name, state: JobState.Failed, ...(message ? { search: message } : {}) } };
}
