import type { TableNaming } from '../table-naming';

/**
 * The statements of the limits besides the claim (see `claimLimited` in the job statements and
 * schema step 5's limits part): the blocks a handler's RateLimitedError sets.
 */
export function buildLimitsStatements(n: TableNaming) {
  const R = n.queuesQualified;
  const G = n.groupsQualified;
  const until = `now() + $2 * interval '1 millisecond'`;
  return {
    /** No job of queue $1 starts on any node for $2 ms (a later end already set is kept). */
    blockQueue: `
      INSERT INTO ${R} AS r (name, rate_limited_until) VALUES ($1, ${until})
      ON CONFLICT (name) DO UPDATE SET rate_limited_until = GREATEST(r.rate_limited_until, EXCLUDED.rate_limited_until), updated_at = now()
      RETURNING name`,

    /**
     * No job of the group of job $1 starts on any node for $2 ms. Returns one row, `grouped`:
     * false when the job has no group (nothing is blocked then).
     * NOTE: the registry row is locked before the group's row (the group row's insert reads the
     * registry update's result), the order the limited claim takes them in: no deadlock.
     */
    blockGroup: `
      WITH job AS (
        SELECT queue, group_key FROM ${n.qualified} WHERE id = $1 AND group_key IS NOT NULL
      ), registry AS (
        INSERT INTO ${R} AS r (name, group_blocked_until) SELECT queue, ${until} FROM job
        ON CONFLICT (name) DO UPDATE SET group_blocked_until = GREATEST(r.group_blocked_until, EXCLUDED.group_blocked_until), updated_at = now()
        RETURNING name
      ), blocked AS (
        INSERT INTO ${G} AS g (queue, group_key, rate_limited_until)
        SELECT job.queue, job.group_key, ${until} FROM job JOIN registry ON registry.name = job.queue
        ON CONFLICT (queue, group_key) DO UPDATE SET rate_limited_until = GREATEST(g.rate_limited_until, EXCLUDED.rate_limited_until), updated_at = now()
        RETURNING queue
      )
      SELECT EXISTS (SELECT 1 FROM blocked) AS grouped`,

    /**
     * Forget groups whose block and rate window ended more than $1 ms ago (the group table keeps a
     * row only while it matters), at most $2 of them.
     */
    deleteStaleGroups: `
      DELETE FROM ${G} WHERE ctid = ANY(ARRAY(
        SELECT ctid FROM ${G} WHERE updated_at < now() - $1 * interval '1 millisecond'
          AND (rate_limited_until IS NULL OR rate_limited_until < now() - $1 * interval '1 millisecond')
        LIMIT $2 FOR UPDATE SKIP LOCKED))
      RETURNING queue`,
  };
}

export type LimitsStatements = ReturnType<typeof buildLimitsStatements>;
