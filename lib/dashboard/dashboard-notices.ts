/**
 * The outcomes an action redirects with (`?notice=retried&n=3`). NOTE: a fixed set: the URL picks
 * one by key and may give a number, so a crafted link cannot make the dashboard say anything else.
 */
export const NOTICES = {
  retried: 'Job retried.',
  cancelled: 'Job cancelled.',
  deleted: 'Job deleted.',
  promoted: 'Job promoted: it runs now.',
  updated: 'Job data saved.',
  paused: 'Queue paused.',
  resumed: 'Queue resumed.',
  limits: 'Queue limits saved.',
  'bulk-retry': 'Retried {n} jobs.',
  'bulk-cancel': 'Cancelled {n} jobs.',
  'bulk-delete': 'Deleted {n} jobs.',
  'bulk-promote': 'Promoted {n} jobs.',
  'schedule-paused': 'Schedule paused.',
  'schedule-resumed': 'Schedule resumed.',
  'schedule-triggered': 'Schedule triggered: its job was added.',
} as const;
