import type { TableNaming } from '../table-naming';

/** The statements of the worker registry (`<table>_workers`, schema step 5). */
export function buildWorkerStatements(n: TableNaming) {
  const W = n.workersQualified;
  const ms = (column: string) => `floor(date_part('epoch', ${column}) * 1000 + 0.0005) AS ${column}`;
  return {
    /**
     * Record worker $1 (host $2, pid $3, queues $4 as {queue: concurrency}, $5 jobs running now) as
     * alive for $6 ms more, and prune the workers that expired (killed: no graceful stop removed
     * them). One statement per beat: the prune is a range of the primary key's table, tiny.
     */
    beat: `
      -- NOTE: SKIP LOCKED: two workers pruning at once never wait for (or deadlock with) each other.
      WITH pruned AS (
        DELETE FROM ${W} WHERE id IN (SELECT id FROM ${W} WHERE expires_at < now() AND id <> $1 FOR UPDATE SKIP LOCKED)
      )
      INSERT INTO ${W} AS w (id, host, pid, queues, running, expires_at)
      VALUES ($1, $2, $3, $4::jsonb, $5, now() + $6 * interval '1 millisecond')
      ON CONFLICT (id) DO UPDATE SET
        queues = EXCLUDED.queues, running = EXCLUDED.running, heartbeat_at = now(), expires_at = EXCLUDED.expires_at`,

    /** Remove worker $1 (its graceful stop). */
    remove: `DELETE FROM ${W} WHERE id = $1`,

    /** The live workers, oldest first. */
    list: `
      SELECT id, host, pid, queues, running, ${ms('started_at')}, ${ms('heartbeat_at')}, ${ms('expires_at')}
      FROM ${W} WHERE expires_at >= now() ORDER BY started_at, id`,
  };
}

export type WorkerStatements = ReturnType<typeof buildWorkerStatements>;
