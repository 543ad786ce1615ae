/** Injection token of the dashboard's resolved options. */
export const DASHBOARD_OPTIONS = Symbol('QUEUE_DASHBOARD_OPTIONS');

/** Jobs per page of the job list. */
export const DASHBOARD_PAGE_SIZE = 50;

/** Counts above this are shown as "100k+". */
export const DASHBOARD_COUNT_CAP = 100_000;

/** The failures page groups at most this many of the newest failed jobs. */
export const DASHBOARD_FAILURE_SAMPLE = 1_000;
