import { sql } from '../helpers/database';
import { waitFor } from '../helpers/wait-for';
import { type ChildWorker, type ExitStatus } from './fixtures/child-worker';
import { countStates, useChaosEnvironment } from './fixtures/chaos-db';
import type { ChildWorkerSettings } from './fixtures/worker';

/**
 * Worker processes die without warning (SIGKILL): every job still completes, and only the jobs that
 * were running on a dead process run again.
 */
const env = useChaosEnvironment('chaos_crash');
const { schema, workers } = env;

describe('chaos: worker processes killed with SIGKILL', () => {
  afterEach(() => workers.killAll());

  /** Jobs of `queue` leased right now by process `pid`. */
  async function activeOn(queueName: string, pid: number): Promise<string[]> {
    const rows = await sql<{ id: string }>(
      `SELECT id FROM "${schema}".queue_jobs WHERE queue = $1 AND state = 'active' AND locked_by ~ (':' || $2::text || ':[^:]*$')`,
      [queueName, pid],
    );
    return rows.map((r) => r.id);
  }

  /**
   * SIGKILLs `victim` while it has jobs in flight and returns the jobs it held when it died (read
   * once its connections are gone, so no statement it sent can still change a row).
   */
  async function killMidRun(queueName: string, victim: ChildWorker): Promise<string[]> {
    await waitFor(`child ${victim.pid} to have jobs in flight`, async () => (await activeOn(queueName, victim.pid)).length > 0);
    victim.kill('SIGKILL');
    expect(await victim.exited).toMatchObject({ signal: 'SIGKILL' });
    await victim.waitForBackendsGone();
    return activeOn(queueName, victim.pid);
  }

  it('completes all 5,000 jobs when a worker is SIGKILLed twice; only jobs in flight on a killed process run again', async () => {
    const q = 'crash';
    const total = 5000;
    const settings = { queue: q, concurrency: 5, maxAttempts: 10, worker: { lockDurationMs: 1500, pollIntervalMs: 50 } };
    const started = Date.now();
    const live = await Promise.all([workers.start(settings), workers.start(settings), workers.start(settings)]);
    await env.queue.addBulk(Array.from({ length: total }, (_, i) => ({ queue: q, name: 'record', data: { ms: 4 + (i % 7) } })));
    const completed = async () => (await countStates(schema, q)).completed ?? 0;

    await waitFor('a fifth of the jobs to complete', async () => (await completed()) >= total / 5);
    const firstVictim = live[0];
    const heldByFirst = await killMidRun(q, firstVictim);
    const doneAtFirstKill = await completed();
    live[0] = await workers.start(settings);

    // The replacement must be at work before it is killed in turn.
    const secondVictim = live[0];
    await waitFor('the replacement to run jobs', async () => {
      const [{ n }] = await sql<{ n: number }>(`SELECT count(*)::int AS n FROM "${schema}".executions WHERE pid = $1`, [secondVictim.pid]);
      return n >= 20;
    });
    const heldBySecond = await killMidRun(q, secondVictim);
    const doneAtSecondKill = await completed();
    live[0] = await workers.start(settings);

    await waitFor('every job to complete', async () => (await completed()) === total, 90_000, 100);
    const elapsed = Date.now() - started;

    const killed = [firstVictim.pid, secondVictim.pid];
    const inFlightAtDeath = new Set([...heldByFirst, ...heldBySecond]);
    // Both kills hit a process in the middle of its work.
    expect(heldByFirst.length).toBeGreaterThan(0);
    expect(heldBySecond.length).toBeGreaterThan(0);
    expect(doneAtFirstKill).toBeLessThan(total);
    expect(doneAtSecondKill).toBeLessThan(total);

    expect(await countStates(schema, q)).toEqual({ completed: total });
    // Every job's final attempt ran its handler exactly once (none lost, none half-done)...
    const notRunOnce = await sql(
      `SELECT j.id, j.attempts, (SELECT count(*) FROM "${schema}".executions e WHERE e.job_id = j.id AND e.attempt = j.attempts)::int AS runs
       FROM "${schema}".queue_jobs j WHERE j.queue = $1
         AND (SELECT count(*) FROM "${schema}".executions e WHERE e.job_id = j.id AND e.attempt = j.attempts) <> 1`,
      [q],
    );
    expect(notRunOnce).toEqual([]);
    // ...no attempt ran twice, and no attempt ran that the job table does not know about.
    const repeated = await sql(
      `SELECT e.job_id, e.attempt, count(*)::int AS n FROM "${schema}".executions e JOIN "${schema}".queue_jobs j ON j.id = e.job_id
       WHERE j.queue = $1 GROUP BY e.job_id, e.attempt HAVING count(*) > 1`,
      [q],
    );
    expect(repeated).toEqual([]);
    const beyond = await sql(
      `SELECT e.* FROM "${schema}".executions e JOIN "${schema}".queue_jobs j ON j.id = e.job_id WHERE j.queue = $1 AND e.attempt > j.attempts`,
      [q],
    );
    expect(beyond).toEqual([]);
    // Every earlier run of a job that ran again was on a killed process.
    const earlierRuns = await sql<{ job_id: string; attempt: number; pid: number }>(
      `SELECT e.job_id, e.attempt, e.pid FROM "${schema}".executions e JOIN "${schema}".queue_jobs j ON j.id = e.job_id
       WHERE j.queue = $1 AND e.attempt < j.attempts`,
      [q],
    );
    expect(earlierRuns.filter((r) => !killed.includes(r.pid))).toEqual([]);
    // Every job that took more than one attempt was in flight on a process when it was killed, and
    // was put back by the rescuer after that process's lease lapsed.
    const retried = await sql<{ id: string; attempts: number; last_error: { name: string; message: string } }>(
      `SELECT id, attempts, last_error FROM "${schema}".queue_jobs WHERE queue = $1 AND attempts > 1`,
      [q],
    );
    expect(retried.length).toBeGreaterThan(0);
    expect(retried.filter((j) => !inFlightAtDeath.has(j.id))).toEqual([]);
    for (const job of retried) {
      expect(job.last_error.name).toBe('JobLeaseExpiredError');
      expect(killed.some((pid) => job.last_error.message.includes(`:${pid}:`))).toBe(true);
    }
    // The surviving workers never crashed.
    expect(live.every((w) => w.alive)).toBe(true);
    if (process.env.CHAOS_LOGS) {
      process.stdout.write(
        `[chaos] ${total} jobs in ${elapsed} ms; killed at ${doneAtFirstKill} and ${doneAtSecondKill} completed; ` +
          `${inFlightAtDeath.size} in flight on the dead, ${retried.length} retried, ${earlierRuns.length} earlier runs\n`,
      );
    }
  }, 120_000);

  it('fails a job that kills its process on every attempt after maxAttempts, counted by the rescuer', async () => {
    const q = 'doomed';
    const settings: Partial<ChildWorkerSettings> & { queue: string } = {
      queue: q,
      maxAttempts: 3,
      worker: { lockDurationMs: 800, pollIntervalMs: 50 },
    };
    // A supervisor that restarts the worker whenever it dies.
    const deaths: ExitStatus[] = [];
    let stopped = false;
    let current: ChildWorker | undefined;
    const supervisor = (async () => {
      while (!stopped) {
        current = await workers.start(settings);
        const status = await current.exited;
        if (!stopped) deaths.push(status);
      }
    })();
    supervisor.catch(() => undefined);

    try {
      await waitFor('the first worker', () => current);
      const job = await env.queue.add(q, 'suicide', {});
      const failed = await waitFor(`job ${job.id} to fail`, async () => {
        const j = await env.queue.getJob(job.id);
        return j?.state === 'failed' ? j : undefined;
      }, 30_000, 50);

      expect(failed.attempts).toBe(3);
      expect(failed.maxAttempts).toBe(3);
      expect(failed.result).toBeNull();
      expect(failed.lastError).toMatchObject({ name: 'JobLeaseExpiredError', attempt: 3 });
      expect(failed.lastError?.message).toMatch(/lease of worker .* lapsed .* attempt 3/);
      // One process died per attempt, and none more.
      expect(deaths).toEqual([
        { code: null, signal: 'SIGKILL' },
        { code: null, signal: 'SIGKILL' },
        { code: null, signal: 'SIGKILL' },
      ]);

      // The queue goes on with the next worker.
      const next = await env.queue.add(q, 'noop', {});
      const done = await waitFor(`job ${next.id} to complete`, async () => {
        const j = await env.queue.getJob(next.id);
        return j?.state === 'completed' ? j : undefined;
      });
      expect(done.result).toEqual({ pid: current!.pid, attempt: 1 });
      expect(deaths).toHaveLength(3);
    } finally {
      stopped = true;
      await workers.killAll();
      await supervisor.catch(() => undefined);
      await workers.killAll();
    }
  }, 90_000);
});
