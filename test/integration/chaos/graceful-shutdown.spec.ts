import { sql } from '../helpers/database';
import { waitFor } from '../helpers/wait-for';
import { countStates, useChaosEnvironment } from './fixtures/chaos-db';

/**
 * SIGTERM to a worker process with jobs in flight (a deploy): jobs that finish within
 * shutdownTimeoutMs complete; those whose handler stops when aborted go back to pending with their
 * attempt not counted; those whose handler ignores its signal keep their lease (no longer renewed:
 * the worker cannot know its process will exit) and are rescued when it lapses, attempt counted;
 * and the process exits.
 */
const env = useChaosEnvironment('chaos_term');
const { schema, workers } = env;

describe('chaos: graceful shutdown on SIGTERM', () => {
  it('completes short jobs, hands back polite long ones with attempts 0, leaves stubborn ones to lapse, and exits', async () => {
    const q = 'term';
    const shutdownTimeoutMs = 1000;
    const settings = {
      queue: q,
      concurrency: 9,
      logLevels: ['error', 'warn', 'log'] as ('error' | 'warn' | 'log')[],
      worker: { lockDurationMs: 1500, pollIntervalMs: 50, shutdownTimeoutMs },
    };
    const worker = await workers.start(settings);
    // Short jobs finish within the shutdown timeout; long ones never would: the polite ones stop
    // when aborted, the stubborn ones ignore their signal.
    const jobs = await env.queue.addBulk([
      ...Array.from({ length: 3 }, () => ({ queue: q, name: 'sleep', data: { ms: 600 } })),
      ...Array.from({ length: 3 }, () => ({ queue: q, name: 'polite-sleep', data: { ms: 60_000 } })),
      ...Array.from({ length: 3 }, () => ({ queue: q, name: 'sleep', data: { ms: 60_000 } })),
    ]);
    const short = jobs.slice(0, 3).map((j) => j.id);
    const long = jobs.slice(3, 6).map((j) => j.id);
    const stubborn = jobs.slice(6).map((j) => j.id);
    await waitFor('all nine handlers to start', async () => {
      const [{ n }] = await sql<{ n: number }>(`SELECT count(*)::int AS n FROM "${schema}".markers WHERE kind = 'start' AND pid = $1`, [worker.pid]);
      return n === 9;
    });

    const [{ now: termAt }] = await sql<{ now: Date }>('SELECT clock_timestamp() AS now');
    const sentAt = Date.now();
    worker.kill('SIGTERM');
    const status = await worker.exited;
    const exitMs = Date.now() - sentAt;

    // Nest's shutdown hook closes the app, then re-raises the signal: a clean exit is either.
    expect([{ code: 0, signal: null }, { code: null, signal: 'SIGTERM' }]).toContainEqual(status);
    expect(exitMs).toBeGreaterThanOrEqual(shutdownTimeoutMs - 100);
    // shutdownTimeoutMs + the abort grace (1 s) + slack.
    expect(exitMs).toBeLessThan(shutdownTimeoutMs + 5000);
    expect(worker.output).toMatch(/6 job\(s\) still running/);
    expect(worker.output).toMatch(/3 job\(s\) ignore their abort signal/);

    expect(await countStates(schema, q)).toEqual({ completed: 3, pending: 3, active: 3 });
    const rows = await sql<{ id: string; state: string; attempts: number; result: unknown; last_error: unknown; locked_by: string | null; locked_until: Date | null }>(
      `SELECT id, state, attempts, result, last_error, locked_by, locked_until FROM "${schema}".queue_jobs WHERE queue = $1 ORDER BY id`,
      [q],
    );
    const byId = new Map(rows.map((r) => [r.id, r]));
    for (const id of short) {
      // Still running when SIGTERM came, and waited for.
      const [{ ended }] = await sql<{ ended: Date }>(`SELECT at AS ended FROM "${schema}".markers WHERE job_id = $1 AND kind = 'end'`, [id]);
      expect(ended.getTime()).toBeGreaterThan(termAt.getTime());
      expect(byId.get(id)).toMatchObject({ state: 'completed', attempts: 1, result: { pid: worker.pid }, last_error: null, locked_by: null });
    }
    for (const id of long) {
      expect(byId.get(id)).toMatchObject({ state: 'pending', attempts: 0, result: null, last_error: null, locked_by: null, locked_until: null });
    }
    for (const id of stubborn) {
      // Still leased to the exited worker, with no renewal since it was aborted (at termAt + shutdownTimeoutMs).
      const row = byId.get(id)!;
      expect(row).toMatchObject({ state: 'active', attempts: 1, result: null, last_error: null });
      expect(row.locked_by).toContain(`:${worker.pid}:`);
      expect(row.locked_until!.getTime()).toBeLessThanOrEqual(termAt.getTime() + shutdownTimeoutMs + settings.worker.lockDurationMs + 100);
    }
    const [{ n: ended }] = await sql<{ n: number }>(`SELECT count(*)::int AS n FROM "${schema}".markers WHERE kind = 'end' AND job_id = ANY($1::bigint[])`, [[...long, ...stubborn]]);
    expect(ended).toBe(0);

    // The polite ones are handed back for the next worker at once, which counts its attempt as the
    // first; the stubborn ones are rescued once their lease lapses, their first attempt counted.
    const next = await workers.start(settings);
    await waitFor('the next worker to take the long jobs', async () => {
      const taken = await sql<{ id: string; attempts: number; locked_by: string }>(
        `SELECT id, attempts, locked_by FROM "${schema}".queue_jobs WHERE id = ANY($1::bigint[]) AND state = 'active'`,
        [[...long, ...stubborn]],
      );
      return (
        taken.length === 6 &&
        taken.every((t) => t.locked_by.includes(`:${next.pid}:`) && t.attempts === (long.includes(t.id) ? 1 : 2))
      );
    });
  });
});
