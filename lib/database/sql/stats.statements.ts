import type { TableNaming } from '../table-naming';

/** The statements of the per-minute rollups (`<table>_stats`, schema step 5). */
export function buildStatsStatements(n: TableNaming) {
  const S = n.statsQualified;
  // NOTE: arrays of different lengths would be padded with NULLs by unnest: counted as 0.
  const addBuckets = (column: string) =>
    `ARRAY(SELECT COALESCE(a, 0) + COALESCE(b, 0) FROM unnest(s.${column}, EXCLUDED.${column}) WITH ORDINALITY AS t(a, b, i) ORDER BY i)`;
  const sum = (column: string) => `${column} = s.${column} + EXCLUDED.${column}`;
  return {
    /**
     * Add the rows of $1 (a JSON array of rollups, one per queue, name and minute, `minute` in epoch
     * ms) to the table: counts and buckets are summed with what other processes already wrote.
     */
    add: `
      INSERT INTO ${S} AS s (queue, name, minute, completed, failed, retried, rescued, wait_count, wait_sum_ms, wait_buckets, run_count, run_sum_ms, run_buckets)
      SELECT r.queue, r.name, to_timestamp(r.minute / 1000.0), r.completed, r.failed, r.retried, r.rescued,
             r.wait_count, r.wait_sum_ms, r.wait_buckets, r.run_count, r.run_sum_ms, r.run_buckets
      FROM jsonb_to_recordset($1::jsonb) AS r(queue text, name text, minute double precision, completed int, failed int, retried int, rescued int,
           wait_count int, wait_sum_ms double precision, wait_buckets int[], run_count int, run_sum_ms double precision, run_buckets int[])
      ON CONFLICT (queue, name, minute) DO UPDATE SET
        ${['completed', 'failed', 'retried', 'rescued', 'wait_count', 'wait_sum_ms', 'run_count', 'run_sum_ms'].map(sum).join(', ')},
        wait_buckets = ${addBuckets('wait_buckets')}, run_buckets = ${addBuckets('run_buckets')}`,

    /** Delete the rollups of minutes older than $1 ms. */
    prune: `DELETE FROM ${S} WHERE minute < now() - $1 * interval '1 millisecond'`,

    /** The rollups of queue $1 (NULL: every queue) from $2 (inclusive) to $3 (exclusive), epoch ms. */
    read: `
      SELECT queue, name, floor(date_part('epoch', minute) * 1000 + 0.0005) AS minute, completed, failed, retried, rescued,
             wait_count, wait_sum_ms, wait_buckets, run_count, run_sum_ms, run_buckets
      FROM ${S}
      WHERE ($1::text IS NULL OR queue = $1) AND minute >= to_timestamp($2::double precision / 1000) AND minute < to_timestamp($3::double precision / 1000)
      ORDER BY minute, queue, name`,
  };
}

export type StatsStatements = ReturnType<typeof buildStatsStatements>;
