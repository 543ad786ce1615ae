import { sql } from '../helpers/database';
import { waitFor } from '../helpers/wait-for';
import { countStates, useChaosEnvironment } from './fixtures/chaos-db';

/**
 * job.transaction() commits a job's database effect and its completion together: however a worker
 * dies, a job has its effect if and only if it is completed, and ends with exactly one.
 */
const env = useChaosEnvironment('chaos_tx');
const { schema, workers } = env;

describe('chaos: transactional completion under SIGKILL', () => {
  it('keeps "effect row exists" equal to "job completed" for every job while workers are killed mid-transaction', async () => {
    const q = 'tx';
    const perRound = 150;
    const total = 4 * perRound;
    const settings = { queue: q, concurrency: 4, maxAttempts: 10, worker: { lockDurationMs: 1000, pollIntervalMs: 50 } };
    const live = await Promise.all([workers.start(settings), workers.start(settings), workers.start(settings)]);

    // One statement sees one snapshot: a job completed without its effect, or an effect whose job
    // is not completed, would show here at whatever moment it existed.
    const mismatches = () =>
      sql<{ id: string; state: string; effect_attempt: number | null }>(
        `SELECT j.id, j.state, e.attempt AS effect_attempt FROM "${schema}".queue_jobs j
         LEFT JOIN "${schema}".effects e ON e.job_id = j.id
         WHERE j.queue = $1 AND (j.state = 'completed') <> (e.job_id IS NOT NULL)`,
        [q],
      );
    const seen: unknown[] = [];
    let watching = true;
    let watchError: unknown;
    const watcher = (async () => {
      while (watching) {
        const found = await mismatches();
        seen.push(...found.slice(0, 20 - seen.length)); // the first few tell what went wrong
        await new Promise((r) => setTimeout(r, 25));
      }
    })().catch((error: unknown) => {
      watchError = error;
    });

    try {
      // Four rounds, each with its own batch of jobs so there is work to interrupt, each ending with
      // one worker killed and replaced. Most jobs hold their transaction open a few ms; every tenth
      // holds it 250 ms, so a kill can be aimed at a process that is inside a transaction.
      const killed: number[] = [];
      for (let round = 0; round < 4; round++) {
        const batch = await env.queue.addBulk(
          Array.from({ length: perRound }, (_, i) => ({ queue: q, name: 'tx', data: { holdMs: i % 10 === 0 ? 250 : 2 + (i % 7) } })),
        );
        const ids = batch.map((j) => j.id);
        const pids = live.map((w) => w.pid);
        const aimed = round % 2 === 0;
        const victimPid = await waitFor(aimed ? 'a worker inside a long transaction' : 'a worker at work', async () => {
          const rows = aimed
            ? // Its effect row is inserted (the marker says so) but not committed (invisible here).
              await sql<{ pid: number }>(
                `SELECT DISTINCT m.pid FROM "${schema}".markers m JOIN "${schema}".queue_jobs j ON j.id = m.job_id
                 WHERE m.job_id = ANY($1::bigint[]) AND m.pid = ANY($2::int[]) AND m.kind = 'in-tx' AND j.attempts = m.attempt
                   AND (j.data->>'holdMs')::int >= 250 AND NOT EXISTS (SELECT 1 FROM "${schema}".effects e WHERE e.job_id = m.job_id)`,
                [ids, pids],
              )
            : await sql<{ pid: number }>(`SELECT DISTINCT pid FROM "${schema}".markers WHERE job_id = ANY($1::bigint[]) AND pid = ANY($2::int[])`, [ids, pids]);
          return rows.length > 0 ? rows[Math.floor(Math.random() * rows.length)].pid : undefined;
        });
        // Otherwise kill at whatever point it has reached, a random moment after it got to work.
        if (!aimed) await new Promise((r) => setTimeout(r, Math.random() * 200));
        const slot = live.findIndex((w) => w.pid === victimPid);
        live[slot].kill('SIGKILL');
        await live[slot].exited;
        killed.push(victimPid);
        live[slot] = await workers.start(settings);
      }

      await waitFor('every job to complete', async () => ((await countStates(schema, q)).completed ?? 0) === total, 60_000, 100);
      watching = false;
      await watcher;

      expect(watchError).toBeUndefined();
      expect(seen).toEqual([]);
      expect(await mismatches()).toEqual([]);
      expect(await countStates(schema, q)).toEqual({ completed: total });
      // Exactly one effect per job, written by the attempt that completed it.
      const effects = await sql<{ n: number; matching: number }>(
        `SELECT count(*)::int AS n, count(*) FILTER (WHERE e.attempt = j.attempts)::int AS matching
         FROM "${schema}".effects e JOIN "${schema}".queue_jobs j ON j.id = e.job_id WHERE j.queue = $1`,
        [q],
      );
      expect(effects).toEqual([{ n: total, matching: total }]);
      // Some attempts were inside their transaction (effect row inserted) when their process died;
      // their effect was rolled back and a later attempt wrote the only one.
      const cutShort = await sql<{ job_id: string; attempt: number; pid: number }>(
        `SELECT m.job_id, m.attempt, m.pid FROM "${schema}".markers m JOIN "${schema}".queue_jobs j ON j.id = m.job_id
         WHERE j.queue = $1 AND m.kind = 'in-tx' AND m.attempt < j.attempts`,
        [q],
      );
      expect(cutShort.length).toBeGreaterThan(0);
      expect(cutShort.filter((m) => !killed.includes(m.pid))).toEqual([]);
      // Attempts ended only by lapsed leases (a duplicate effect would have failed an attempt loudly).
      const otherErrors = await sql(
        `SELECT id, last_error FROM "${schema}".queue_jobs WHERE queue = $1 AND last_error IS NOT NULL AND last_error->>'name' <> 'JobLeaseExpiredError'`,
        [q],
      );
      expect(otherErrors).toEqual([]);
      expect(live.every((w) => w.alive)).toBe(true);
    } finally {
      watching = false;
      await watcher;
    }
  }, 90_000);
});
