const BIGINT_ID = /^[1-9][0-9]{0,18}$/;
/** Largest PostgreSQL `bigint`: 19-digit strings above it would make the query itself fail. */
const MAX_BIGINT = 9223372036854775807n;

/** Whether `value` is a job id: a string of digits from 1 to the largest `bigint`. */
export function isJobId(value: unknown): value is string {
  return typeof value === 'string' && BIGINT_ID.test(value) && BigInt(value) <= MAX_BIGINT;
}
