import { sql } from '../helpers/database';
import { waitFor } from '../helpers/wait-for';
import { countStates, useChaosEnvironment } from './fixtures/chaos-db';

/**
 * Every database connection of the workers is terminated under their feet (what a failover, a
 * proxy restart or an idle-connection killer does): they recover by themselves.
 */
const env = useChaosEnvironment('chaos_conn');
const { schema, workers } = env;

describe('chaos: worker connections terminated', () => {
  /**
   * Terminates every connection of the child workers (their application_name starts with the
   * schema name; this test's own connections and other test files' are left alone).
   */
  async function terminateWorkerConnections(): Promise<{ terminated: number; at: Date }> {
    const rows = await sql<{ ok: boolean; at: Date }>(
      `SELECT pg_terminate_backend(pid) AS ok, now() AS at FROM pg_stat_activity
       WHERE datname = current_database() AND pid <> pg_backend_pid() AND starts_with(application_name, $1)`,
      [`${schema}:`],
    );
    const [{ at }] = await sql<{ at: Date }>('SELECT now() AS at');
    return { terminated: rows.filter((r) => r.ok).length, at };
  }

  /** Connections of the workers that are LISTENing (the listener's last statement is its LISTEN). */
  async function listeners(): Promise<number> {
    const [{ n }] = await sql<{ n: number }>(
      `SELECT count(*)::int AS n FROM pg_stat_activity WHERE starts_with(application_name, $1) AND query LIKE 'LISTEN %'`,
      [`${schema}:`],
    );
    return n;
  }

  it('completes every job after all worker connections are terminated twice mid-run, without restarting a worker', async () => {
    const q = 'conn';
    const total = 2000;
    const settings = { queue: q, concurrency: 5, maxAttempts: 10, worker: { lockDurationMs: 1500, pollIntervalMs: 100 } };
    const live = await Promise.all([workers.start(settings), workers.start(settings)]);
    await waitFor('both workers to LISTEN', async () => (await listeners()) === 2);
    await env.queue.addBulk(Array.from({ length: total }, (_, i) => ({ queue: q, name: 'record', data: { ms: 2 + (i % 5) } })));
    const completed = async () => (await countStates(schema, q)).completed ?? 0;

    const cuts: { terminated: number; at: Date; done: number }[] = [];
    for (const threshold of [total / 5, total / 2]) {
      await waitFor(`${threshold} jobs to complete`, async () => (await completed()) >= threshold);
      cuts.push({ ...(await terminateWorkerConnections()), done: await completed() });
      // Recovered: both LISTEN connections are back and jobs complete again.
      await waitFor('the workers to LISTEN again', async () => (await listeners()) === 2);
      const before = cuts[cuts.length - 1].done;
      await waitFor('jobs to complete again', async () => (await completed()) > before + 50);
    }
    await waitFor('every job to complete', async () => (await completed()) === total, 60_000, 100);

    for (const cut of cuts) {
      // Each cut took down at least every worker's pool connections and LISTEN connection.
      expect(cut.terminated).toBeGreaterThanOrEqual(4);
      expect(cut.done).toBeLessThan(total);
    }
    expect(await countStates(schema, q)).toEqual({ completed: total });
    // The same two processes did all of it, both of them after the last cut.
    expect(live.every((w) => w.alive)).toBe(true);
    expect(workers.all()).toHaveLength(2);
    const finishers = await sql<{ pid: number }>(
      `SELECT DISTINCT (result->>'pid')::int AS pid FROM "${schema}".queue_jobs WHERE queue = $1 AND finished_at > $2`,
      [q, cuts[cuts.length - 1].at],
    );
    expect(finishers.map((r) => r.pid).sort()).toEqual(live.map((w) => w.pid).sort());
    // Outcomes that could not be written while the connections were down waited and were written
    // later, rather than dropped (which would leave their jobs to be rescued and run again).
    for (const worker of live) expect(worker.output).not.toMatch(/Dropped the outcomes/);
  }, 90_000);
});
