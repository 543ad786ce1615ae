import { sql } from '../helpers/database';
import { waitFor } from '../helpers/wait-for';
import { countStates, useChaosEnvironment } from './fixtures/chaos-db';

/**
 * No hoarding: claiming ahead (a local buffer of claimed jobs) must not let one process take more
 * than its share of slow jobs. Two real worker processes with concurrency 10 share 200 jobs of one
 * second each: each runs 40-60 % of them, each job exactly once.
 */
describe('claim-ahead does not hoard (real child processes)', () => {
  const env = useChaosEnvironment('ahead_fair');
  afterEach(() => env.workers.killAll());

  /** Adds `count` one-second jobs, waits until all completed, returns executions per pid. */
  async function runSlowJobs(queue: string, count: number): Promise<Map<number, number>> {
    const jobs = await env.queue.addBulk(Array.from({ length: count }, (_, i) => ({ queue, name: 'record', data: { ms: 1000, i } })));
    const ids = jobs.map((j) => j.id);
    await waitFor(`${count} one-second jobs completed`, async () => {
      const [{ n }] = await sql<{ n: number }>(`SELECT count(*)::int AS n FROM "${env.schema}".queue_jobs WHERE id = ANY($1::bigint[]) AND state = 'completed'`, [ids]);
      return n === count;
    }, 60_000, 200);
    const rows = await sql<{ pid: number; n: number; jobs: number }>(
      `SELECT pid, count(*)::int AS n, count(DISTINCT job_id)::int AS jobs FROM "${env.schema}".executions WHERE job_id = ANY($1::bigint[]) GROUP BY pid`,
      [ids],
    );
    // Exactly once: as many executions as jobs, none twice.
    expect(rows.reduce((a, r) => a + r.n, 0)).toBe(count);
    expect(rows.reduce((a, r) => a + r.jobs, 0)).toBe(count);
    return new Map(rows.map((r) => [r.pid, r.n]));
  }

  function expectFairShares(shares: Map<number, number>, pids: number[], count: number): void {
    for (const pid of pids) {
      const share = (shares.get(pid) ?? 0) / count;
      expect(share).toBeGreaterThanOrEqual(0.4);
      expect(share).toBeLessThanOrEqual(0.6);
    }
  }

  it('two processes with concurrency 10 each run 40-60 % of 200 one-second jobs', async () => {
    const queue = 'fair';
    const a = await env.workers.start({ queue, concurrency: 10 });
    const b = await env.workers.start({ queue, concurrency: 10 });
    expectFairShares(await runSlowJobs(queue, 200), [a.pid, b.pid], 200);
  }, 90_000);

  it('also after both drained quick jobs (their buffers sized for quick handlers) when the jobs turn slow', async () => {
    const queue = 'fair-warm';
    const a = await env.workers.start({ queue, concurrency: 10 });
    const b = await env.workers.start({ queue, concurrency: 10 });
    await env.queue.addBulk(Array.from({ length: 2000 }, (_, i) => ({ queue, name: 'noop', data: { i } })));
    await waitFor('2000 quick jobs completed', async () => (await countStates(env.schema, queue)).completed === 2000, 60_000, 100);
    const before = await sql<{ n: number }>(`SELECT count(*)::int AS n FROM "${env.schema}".queue_jobs WHERE queue = $1`, [queue]);
    expect(before[0].n).toBe(2000);
    const shares = await runSlowJobs(queue, 200);
    expectFairShares(shares, [a.pid, b.pid], 200);
  }, 120_000);
});
