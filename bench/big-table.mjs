// The big mixed-state table of the job management and dashboard benchmarks.
import { performance } from 'node:perf_hooks';
import { sql, table } from './common.mjs';
import { log } from './measure.mjs';

/**
 * Fills the job table of `schema` with `rows` jobs in 20 queues (q00..q19), by SQL, in mixed states:
 * 10 % failed, 5 % cancelled, 10 % pending (half of them delayed), 0.1 % active, the rest completed;
 * every queue holds every state. Shared by bench/admin.mjs and bench/dashboard.mjs.
 */
export async function fillBigTable(schema, rows) {
  const t0 = performance.now();
  // NOTE: in pieces of 100,000 rows, so each statement stays short; ids grow with g.
  for (let from = 1; from <= rows; from += 100_000) {
    const to = Math.min(rows, from + 99_999);
    await sql(
      `INSERT INTO ${table(schema)} (queue, name, data, state, priority, run_at, attempts, claims, max_attempts, last_error, locked_by, locked_until, created_at, started_at, finished_at, result)
       SELECT 'q' || lpad((g % 20)::text, 2, '0'), (ARRAY['send-email', 'resize', 'charge', 'sync', 'report'])[1 + g % 5],
         jsonb_build_object('tenant', g % 1000, 'user', jsonb_build_object('id', g, 'plan', (ARRAY['free', 'pro'])[1 + g % 2]), 'kind', 'k' || (g % 7)),
         s.state, (g % 3), CASE WHEN s.state = 'pending' AND g % 2 = 0 THEN now() + interval '1 day' ELSE now() - (($2 - g) * interval '100 ms') END,
         CASE WHEN s.state = 'pending' THEN 0 ELSE 1 END, CASE WHEN s.state = 'pending' THEN 0 ELSE 1 END, 3,
         CASE WHEN s.state = 'failed' THEN jsonb_build_object('name', 'Error', 'message', 'upstream returned ' || (500 + g % 4) || ' for request ' || g, 'attempt', 3, 'at', now()) END,
         CASE WHEN s.state = 'active' THEN 'bench-ghost' END, CASE WHEN s.state = 'active' THEN now() + interval '1 day' END,
         now() - (($2 - g) * interval '100 ms'), CASE WHEN s.state <> 'pending' THEN now() - (($2 - g) * interval '100 ms') END,
         CASE WHEN s.state IN ('completed', 'failed', 'cancelled') THEN now() - (($2 - g) * interval '100 ms') + interval '50 ms' END,
         CASE WHEN s.state = 'completed' THEN 'null'::jsonb END
       FROM generate_series($1::int, $3::int) AS g,
         -- NOTE: the state from g / 20, the queue from g % 20: every queue holds every state.
         LATERAL (SELECT CASE WHEN (g / 20) % 1000 = 255 THEN 'active' WHEN (g / 20) % 100 < 10 THEN 'failed' WHEN (g / 20) % 100 < 15 THEN 'cancelled'
                               WHEN (g / 20) % 100 < 25 THEN 'pending' ELSE 'completed' END AS state) AS s`,
      [from, rows, to],
    );
  }
  await sql(`VACUUM ANALYZE ${table(schema)}`);
  const counts = await sql(`SELECT state, count(*)::int AS n FROM ${table(schema)} GROUP BY state ORDER BY state`);
  log(`filled ${rows} rows in ${((performance.now() - t0) / 1000).toFixed(1)} s: ${counts.map((c) => `${c.state} ${c.n}`).join(', ')}`);
}
