import { JobState } from '../../../lib';
import { sql } from '../helpers/database';
import { waitFor } from '../helpers/wait-for';
import { countStates, useChaosEnvironment } from './fixtures/chaos-db';

// A pause holds on every node: 3 worker processes drain a queue; once pause() has returned, no job
// of it starts anywhere (judged by the database's own started_at), and after resume() the drain
// completes.
const env = useChaosEnvironment('pausenodes');
const QUEUE = 'drain';
const JOBS = 600;

describe('pause while 3 worker processes drain', () => {
  it('no job starts after the pause is acknowledged; after resume the drain completes', async () => {
    await env.queue.addBulk(Array.from({ length: JOBS }, (_, i) => ({ queue: QUEUE, name: 'record', data: { ms: 20, i } })));
    await Promise.all([1, 2, 3].map(() => env.workers.start({ queue: QUEUE, concurrency: 4, worker: { pollIntervalMs: 100 } })));
    await waitFor('the drain to be under way', async () => ((await countStates(env.schema, QUEUE)).completed ?? 0) >= 50);

    await env.queue.pause(QUEUE);
    // The database's clock, read after pause() returned: the instant the pause was acknowledged.
    const [{ ack }] = await sql<{ ack: Date }>('SELECT clock_timestamp() AS ack');
    // Running jobs finish; then nothing is active for a while, on any node.
    await waitFor('the running jobs to finish', async () => !(await countStates(env.schema, QUEUE)).active, 15_000);
    await new Promise((resolve) => setTimeout(resolve, 1500)); // the window in which nothing may start
    const [{ late }] = await sql<{ late: number }>(`SELECT count(*)::int AS late FROM "${env.schema}".queue_jobs WHERE queue = $1 AND started_at > $2`, [QUEUE, ack]);
    expect(late).toBe(0);
    const paused = await countStates(env.schema, QUEUE);
    expect(paused.pending).toBeGreaterThan(0);
    expect(paused.active ?? 0).toBe(0);

    await env.queue.resume(QUEUE);
    await waitFor('the drain to complete', async () => (await countStates(env.schema, QUEUE)).completed === JOBS, 60_000, 100);
    // Each job ran once.
    const [{ runs }] = await sql<{ runs: number }>(`SELECT count(*)::int AS runs FROM "${env.schema}".executions`);
    expect(runs).toBe(JOBS);
    expect((await env.queue.getCounts(QUEUE))[JobState.Completed]).toBe(JOBS);
  }, 120_000);
});
