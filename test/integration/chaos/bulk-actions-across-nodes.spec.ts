import { JobState } from '../../../lib';
import { sql } from '../helpers/database';
import { waitFor } from '../helpers/wait-for';
import { countStates, useChaosEnvironment } from './fixtures/chaos-db';

// Bulk actions of the job management API reach worker processes: a bulk cancel aborts the handlers
// running on each of two child workers (their slots free up long before the handlers' own end,
// their outcomes are discarded), and a bulk retry in small batches while two child workers drain
// runs every revived job exactly once.
const env = useChaosEnvironment('bulknodes');

const markers = (kind: string) =>
  sql<{ job_id: string; pid: number }>(`SELECT job_id::text, pid FROM "${env.schema}".markers WHERE kind = $1`, [kind]);

describe('bulk actions across worker processes', () => {
  afterEach(() => env.workers.killAll());

  it('cancelJobs aborts the running handlers of every process, in batches, and their outcomes are discarded', async () => {
    const QUEUE = 'bulk-cancel';
    await Promise.all([1, 2].map(() => env.workers.start({ queue: QUEUE, concurrency: 3, worker: { pollIntervalMs: 100 } })));
    // Six handlers that sleep 60 s unless aborted: three on each process (each has 3 slots).
    const running = await env.queue.addBulk(Array.from({ length: 6 }, (_, i) => ({ queue: QUEUE, name: 'polite-sleep', data: { ms: 60_000, i } })));
    await waitFor('six handlers to start', async () => (await markers('start')).length === 6, 20_000);
    expect(new Set((await markers('start')).map((m) => m.pid)).size).toBe(2);
    const waiting = await env.queue.addBulk(Array.from({ length: 4 }, (_, i) => ({ queue: QUEUE, name: 'polite-sleep', data: { ms: 60_000, w: i } })));

    const batches: number[] = [];
    const cancelled = await env.queue.cancelJobs({ queue: QUEUE }, { batchSize: 4, onProgress: (p) => batches.push(p.affected) });
    expect(cancelled).toBe(10);
    expect(batches).toEqual([4, 8, 10]);

    // The slots free up only when the aborted handlers return: new jobs start on both processes
    // within seconds, while the cancelled handlers would have slept a minute.
    const after = await env.queue.addBulk(Array.from({ length: 6 }, (_, i) => ({ queue: QUEUE, name: 'record', data: { ms: 0, i } })));
    await waitFor('the new jobs to complete', async () => {
      const done = await sql<{ n: number }>(`SELECT count(*)::int AS n FROM "${env.schema}".queue_jobs WHERE id = ANY($1::bigint[]) AND state = 'completed'`, [after.map((j) => j.id)]);
      return done[0].n === 6;
    }, 15_000);
    const states = await sql<{ state: string }>(`SELECT state FROM "${env.schema}".queue_jobs WHERE id = ANY($1::bigint[])`, [[...running, ...waiting].map((j) => j.id)]);
    expect(states.map((s) => s.state)).toEqual(Array(10).fill(JobState.Cancelled));
    // None of the cancelled handlers ran to its end. NOTE: batches are transactions of their own: a
    // waiting job may be claimed into a slot the first batch freed, and is then cancelled (and
    // aborted) as an active job by a later batch.
    expect(await markers('end')).toEqual([]);
    const started = (await markers('start')).map((m) => m.job_id);
    expect(started).toEqual(expect.arrayContaining(running.map((j) => j.id)));
    expect([...running, ...waiting].map((j) => j.id)).toEqual(expect.arrayContaining(started));
  }, 60_000);

  it('retryJobs in small batches while two processes drain: every revived job runs exactly once', async () => {
    const QUEUE = 'bulk-retry';
    const JOBS = 300;
    const jobs = await env.queue.addBulk(Array.from({ length: JOBS }, (_, i) => ({ queue: QUEUE, name: 'record', data: { ms: 1, i } })));
    await sql(`UPDATE "${env.schema}".queue_jobs SET state = 'failed', attempts = 3, claims = 3, finished_at = now() WHERE id = ANY($1::bigint[])`, [jobs.map((j) => j.id)]);
    await Promise.all([1, 2].map(() => env.workers.start({ queue: QUEUE, concurrency: 8, worker: { pollIntervalMs: 60_000 } })));
    // The workers poll once a minute: the retried jobs are found through the wake-ups of each batch.
    expect(await env.queue.retryJobs({ queue: QUEUE, state: JobState.Failed }, { batchSize: 25 })).toBe(JOBS);
    await waitFor('the retried jobs to complete', async () => (await countStates(env.schema, QUEUE)).completed === JOBS, 30_000, 100);
    const runs = await sql<{ job_id: string; n: number }>(
      `SELECT job_id::text, count(*)::int AS n FROM "${env.schema}".executions WHERE job_id = ANY($1::bigint[]) GROUP BY job_id`,
      [jobs.map((j) => j.id)],
    );
    expect(runs).toHaveLength(JOBS);
    expect(runs.every((r) => r.n === 1)).toBe(true);
    const pids = await sql<{ n: number }>(`SELECT count(DISTINCT pid)::int AS n FROM "${env.schema}".executions WHERE job_id = ANY($1::bigint[])`, [jobs.map((j) => j.id)]);
    expect(pids[0].n).toBe(2);
  }, 60_000);
});
