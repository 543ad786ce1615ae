import type { INestApplicationContext } from '@nestjs/common';
import { Handle, InvalidJobOptionError, JobState, Processor, QueueService } from '../../lib';
import { createTestApp } from './helpers/app';
import { dropSchema, sql, uniqueSchema } from './helpers/database';
import { waitForJobState } from './helpers/jobs';
import { waitFor } from './helpers/wait-for';

const schema = uniqueSchema('pause');
/** Long enough that a job started within the test's bounds was woken, not polled. */
const NO_POLL = 60_000;

@Processor('paused-q', { concurrency: 4 })
class PausedProcessor {
  @Handle()
  run() {
    return 'ran';
  }
}

describe('pause and resume', () => {
  const apps: INestApplicationContext[] = [];
  let queue: QueueService;
  const boot = async (pollIntervalMs = NO_POLL) => {
    const app = await createTestApp({ schema, providers: [PausedProcessor], queue: { worker: { pollIntervalMs } } });
    apps.push(app);
    return app;
  };

  beforeAll(async () => {
    const producer = await createTestApp({ schema, queue: { worker: false } });
    apps.push(producer);
    queue = producer.get(QueueService);
  });
  afterAll(async () => {
    for (const app of apps.reverse()) await app.close();
    await dropSchema(schema);
  });

  it('a paused queue starts nothing on any node, across restarts; add() still works; resume wakes the workers at once', async () => {
    const worker = await boot(50);
    const before = await queue.add('paused-q', 'x', {});
    await waitForJobState(queue, before.id, JobState.Completed);

    const paused = await queue.pause('paused-q');
    expect(paused).toMatchObject({ name: 'paused-q', paused: true });
    expect(paused.pausedAt).toBeInstanceOf(Date);
    expect((await queue.pause('paused-q')).pausedAt).toEqual(paused.pausedAt); // idempotent
    const jobs = await Promise.all([1, 2, 3].map((i) => queue.add('paused-q', 'x', { i })));
    // The worker polls every 50 ms and is notified of each add: given 20 polls, it starts nothing.
    await new Promise((resolve) => setTimeout(resolve, 1000)); // the period in which nothing may start
    expect((await queue.getCounts('paused-q')).pending).toBe(3);

    // A restarted worker (and a second one) still sees the pause: it is stored.
    await worker.close();
    apps.splice(apps.indexOf(worker), 1);
    await boot(NO_POLL);
    await boot(NO_POLL);
    await new Promise((resolve) => setTimeout(resolve, 500)); // nothing may start here either
    expect((await queue.getCounts('paused-q')).pending).toBe(3);

    // The workers poll once a minute: only resume's wake-up can start the jobs this soon.
    const resumedAt = Date.now();
    expect(await queue.resume('paused-q')).toMatchObject({ paused: false, pausedAt: null });
    for (const job of jobs) await waitForJobState(queue, job.id, JobState.Completed, 5_000);
    expect(Date.now() - resumedAt).toBeLessThan(5_000);
    expect(await queue.resume('never-paused')).toBeNull();
  });

  it('getQueues lists every known queue with its counts, refreshed at most every 2 s', async () => {
    await queue.add('listed-only', 'x', {});
    const found = await waitFor('listed-only in getQueues', async () => (await queue.getQueues()).find((q) => q.name === 'listed-only'), 10_000, 200);
    expect(found).toMatchObject({ paused: false, counts: { pending: 1, active: 0, completed: 0, failed: 0, cancelled: 0 } });
    const names = (await queue.getQueues()).map((q) => q.name);
    expect(names).toEqual(expect.arrayContaining(['paused-q', 'listed-only']));
    expect(names).not.toContain('never-paused');
    const done = (await queue.getQueues()).find((q) => q.name === 'paused-q')!;
    expect(done.countsAt).toBeInstanceOf(Date);
    // One count serves every caller for 2 s: back-to-back calls see the same counting time.
    const [a, b] = [await queue.getQueues(), await queue.getQueues()];
    expect(a.find((q) => q.name === 'paused-q')!.countsAt).toEqual(b.find((q) => q.name === 'paused-q')!.countsAt);
  });

  it('refuses an invalid queue name', async () => {
    await expect(queue.pause('')).rejects.toBeInstanceOf(InvalidJobOptionError);
    await expect(queue.resume('a\nb')).rejects.toBeInstanceOf(InvalidJobOptionError);
    const [{ n }] = await sql<{ n: number }>(`SELECT count(*)::int AS n FROM "${schema}".queue_jobs_queues WHERE name = ''`);
    expect(n).toBe(0);
  });
});
