/**
 * The columns a claim sends back per job, shared by the claim statements and the limited claim
 * function (schema step 5), which returns them as its own columns.
 */

// NOTE: timestamps leave the database as whole epoch milliseconds (float8): node-postgres parses
// a float with parseFloat, but a timestamptz with a regular-expression date parser that costs
// microseconds per value, three values per job on the hottest path (claim). Computed in float8
// with date_part, not with extract, which works in numeric: 1.0 µs against 0.25 µs per value
// here (a million values in psql). The float's error stays below 0.0004 ms until
// 2100, so adding 0.0005 before the floor gives the exact truncation (checked against extract
// on 4 million timestamps up to 2099).
export const epochMs = (column: string) => `floor(date_part('epoch', ${column}) * 1000 + 0.0005)`;

/** `epochMs(column) AS as`. */
export const epochMsAs = (column: string, as: string) => `${epochMs(column)} AS ${as}`;

/** The claim's defaults for run options, as SQL: the statements' parameters, or the function's. */
export interface ClaimDefaultsSql {
  maxAttempts: string;
  backoff: string;
  timeoutMs: string;
}

/** The statements' defaults: parameters $5-$7. */
export const CLAIM_DEFAULT_PARAMS: ClaimDefaultsSql = { maxAttempts: '$5', backoff: '$6::jsonb', timeoutMs: '$7' };

/**
 * The claimed columns of the rows of `p` (a table alias with its dot).
 * NOTE: the order matters: `toClaimedJob` reads claimed rows by position. Only what differs
 * between the jobs of one claim is sent back, because the worker parses every value of every
 * row: not the queue (the claim's own), nor the lease end (start + lease), nor a result or
 * finish time (none yet), and the run options only where they differ from the processor's
 * defaults the claim was given, which is rare. The group near the end: NULL for a job without one,
 * which node-postgres hands over without parsing anything. CLAIMED_COLUMN_COUNT counts them.
 */
export const claimedColumns = (p: string, d: ClaimDefaultsSql = CLAIM_DEFAULT_PARAMS) =>
  `${p}id, ${p}name, ${p}data, ${p}priority, ${p}attempts, ${p}claims, NULLIF(${p}max_attempts, ${d.maxAttempts}),
     NULLIF(${p}backoff, ${d.backoff}), NULLIF(${p}timeout_ms, ${d.timeoutMs}), ${p}last_error,
     ${epochMsAs(`${p}run_at`, 'run_at')}, ${epochMsAs(`${p}created_at`, 'created_at')}, ${epochMsAs(`${p}started_at`, 'started_at')}, ${p}unique_key, ${p}group_key,
     ${epochMsAs(`${p}scheduled_for`, 'scheduled_for')}, ${p}schedule_key, ${p}parent_id`;

/**
 * The SQL types of `claimedColumns`, in order, for a function that returns them (`out_<name>`):
 * the result of `RETURN QUERY` must match them exactly.
 */
export const CLAIMED_COLUMN_TYPES: [string, string][] = [
  ['id', 'bigint'], ['name', 'text'], ['data', 'jsonb'], ['priority', 'integer'], ['attempts', 'integer'], ['claims', 'integer'],
  ['max_attempts', 'integer'], ['backoff', 'jsonb'], ['timeout_ms', 'integer'], ['last_error', 'jsonb'],
  ['run_at', 'double precision'], ['created_at', 'double precision'], ['started_at', 'double precision'], ['unique_key', 'text'], ['group_key', 'text'],
  ['scheduled_for', 'double precision'], ['schedule_key', 'text'], ['parent_id', 'bigint'],
];

/**
 * How many columns `claimedColumns` returns (`toClaimedJob` reads them by position); a traced claim's
 * trace context comes right after them. A test checks it against the statement.
 */
export const CLAIMED_COLUMN_COUNT = 18;
