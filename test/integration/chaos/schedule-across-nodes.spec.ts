import { sql } from '../helpers/database';
import { waitFor } from '../helpers/wait-for';
import { countStates, useChaosEnvironment } from './fixtures/chaos-db';

// Exactly one job per slot across processes, with no leader: 3 worker processes enqueue a
// six-field (per-second) schedule for 10 s; one of them is SIGKILLed in the middle. Every slot of
// the window has exactly one job (counted per scheduled_for), none is missing, and every job
// completes on the survivors.
const env = useChaosEnvironment('chaos_cron');
const { schema, workers } = env;
const QUEUE = 'cron-nodes';

const slots = () =>
  sql<{ slot: number; n: number }>(
    `SELECT floor(extract(epoch FROM scheduled_for) * 1000)::float8 AS slot, count(*)::int AS n FROM "${schema}".queue_jobs
     WHERE schedule_key = 'every-second' GROUP BY scheduled_for ORDER BY scheduled_for`,
  );

describe('chaos: a per-second schedule enqueued by 3 worker processes, one SIGKILLed', () => {
  afterEach(() => workers.killAll());

  it('exactly one job per slot for 10 s, none missing; the kill changes nothing', async () => {
    const settings = { queue: QUEUE, concurrency: 4, worker: { lockDurationMs: 1500, pollIntervalMs: 100 } };
    const live = await Promise.all([workers.start(settings), workers.start(settings), workers.start(settings)]);
    // NOTE: catch-up 'all', so a slot the loaded machine enqueues more than a second late still runs.
    await env.queue.schedule('every-second', { queue: QUEUE, name: 'record', cron: '* * * * * *', data: { ms: 5 }, catchUp: 'all' });
    const first = await waitFor('the first slot', async () => (await slots())[0]?.slot);
    await waitFor('5 s of slots', async () => (await slots()).some((s) => s.slot >= first + 5000), 20_000, 100);
    live[1].kill('SIGKILL');
    expect(await live[1].exited).toMatchObject({ signal: 'SIGKILL' });
    await waitFor('10 s of slots', async () => (await slots()).some((s) => s.slot >= first + 10_000), 20_000, 100);
    await env.queue.pauseSchedule('every-second');

    const all = await slots();
    const window = all.filter((s) => s.slot <= first + 10_000);
    // Exactly one job per slot, and every second of the window has its job.
    expect(window.filter((s) => s.n !== 1)).toEqual([]);
    expect(window.map((s) => s.slot)).toEqual(Array.from({ length: 11 }, (_, i) => first + i * 1000));
    // Every job completes on the survivors (those the killed one held are rescued).
    await waitFor('every scheduled job to complete', async () => {
      const states = await countStates(schema, QUEUE);
      return states.completed === all.length && !states.pending && !states.active;
    }, 30_000, 100);
    // No enqueuer failed (a compare-and-set miss or a clash would be logged as a failed tick).
    for (const child of workers.all()) expect(child.output).not.toMatch(/Schedule enqueuer failed/);
    // A job of the schedule knows its slot and key (getJob).
    const [{ id }] = await sql<{ id: string }>(`SELECT id::text FROM "${schema}".queue_jobs WHERE schedule_key = 'every-second' ORDER BY id LIMIT 1`);
    const job = await env.queue.getJob(id);
    expect(job).toMatchObject({ scheduleKey: 'every-second', state: 'completed' });
    expect(job!.scheduledFor!.getTime()).toBe(first);
  }, 120_000);
});
