import type { TableNaming } from '../table-naming';

/** The statements behind the Prometheus gauges (schema step 4's registry and claim index only). */
export function buildMetricsStatements(n: TableNaming) {
  const Q = n.qualified;
  const R = n.queuesQualified;
  // NOTE: the claim index is (hashtext(queue), priority DESC, run_at, id) WHERE pending: one probe
  // finds the next lower priority present under a queue's hash, one more the oldest due job of a
  // priority. The probes match on the hash alone, so the planner sees them as what they are (with
  // the name too, it costs each as a scan of the queue's jobs). The job found is counted for its own queue:
  // only if two live queue names shared a hash could one of them miss a priority's oldest job.
  const sameHash = (alias: string) => `j.state = 'pending' AND hashtext(j.queue) = hashtext(${alias}.queue)`;
  return {
    /**
     * Per queue with a due pending job, the age (ms) of its oldest one. A loose index scan: for each
     * registered queue, the distinct priorities of its pending jobs are walked from the highest
     * down (one index probe each), and for each the first due job by run_at (one more), so the cost
     * is queues × priorities in use, never the number of pending jobs.
     */
    oldestDue: `
      -- NOTE: the planner cannot tell how few priorities a queue has and costs the walk as if each
      -- had ten: with many queues the estimate passes jit_above_cost, and compiling the plan costs
      -- hundreds of ms for a statement that runs in a few. Sent as one script (see runScript).
      SET LOCAL jit = off;
      WITH RECURSIVE priorities AS (
        SELECT r.queue, (SELECT j.priority FROM ${Q} AS j WHERE ${sameHash('r')} ORDER BY j.priority DESC LIMIT 1) AS priority
        FROM (SELECT name AS queue FROM ${R}) AS r
        UNION ALL
        SELECT p.queue, (SELECT j.priority FROM ${Q} AS j WHERE ${sameHash('p')} AND j.priority < p.priority ORDER BY j.priority DESC LIMIT 1)
        FROM priorities AS p WHERE p.priority IS NOT NULL
      )
      SELECT head.queue, floor(date_part('epoch', now() - min(head.run_at)) * 1000) AS age_ms
      FROM priorities AS p
      CROSS JOIN LATERAL (
        SELECT j.queue, j.run_at FROM ${Q} AS j
        WHERE ${sameHash('p')} AND j.priority = p.priority AND j.run_at <= now()
        ORDER BY j.run_at LIMIT 1
      ) AS head
      GROUP BY head.queue`,
  };
}

export type MetricsStatements = ReturnType<typeof buildMetricsStatements>;
