import type { INestApplicationContext } from '@nestjs/common';
import { Handle, JobState, Processor, QueueService, type Job } from '../../lib';
import { createTestApp } from './helpers/app';
import { dropSchema, sql, uniqueSchema } from './helpers/database';
import { waitForJobState } from './helpers/jobs';
import { waitFor } from './helpers/wait-for';

const schema = uniqueSchema('wake');
/** Long enough that a job picked up within the test's bounds was not found by polling. */
const NO_POLL = 600_000;
const started = new Map<string, number>();

@Processor('wake', { concurrency: 5 })
class WakeProcessor {
  @Handle('ping')
  ping(job: Job) {
    started.set(job.id, Date.now());
  }
}

const listenerBackends = () =>
  sql<{ pid: number }>(`SELECT pid FROM pg_stat_activity WHERE query = $1 AND datname = current_database()`, [`LISTEN "${schema}.queue_jobs"`]);

describe('wake-ups', () => {
  let producer: INestApplicationContext;
  let queue: QueueService;
  const apps: INestApplicationContext[] = [];

  beforeAll(async () => {
    producer = await createTestApp({ schema, queue: { worker: false } });
    queue = producer.get(QueueService);
  });

  afterEach(async () => {
    await Promise.all(apps.splice(0).map((a) => a.close()));
  });

  afterAll(async () => {
    await producer?.close();
    await dropSchema(schema);
  });

  it('a LISTENing worker in another app picks a new job up at once, without polling', async () => {
    apps.push(await createTestApp({ schema, providers: [WakeProcessor], queue: { worker: { pollIntervalMs: NO_POLL } } }));
    await waitFor('listener connected', async () => (await listenerBackends()).length === 1);
    for (let i = 0; i < 5; i++) {
      const t0 = Date.now();
      const job = await queue.add('wake', 'ping', { i });
      await waitForJobState(queue, job.id, JobState.Completed, 5000);
      // Generous bound: the point is "not a poll interval", the speed is measured by the bench.
      expect(started.get(job.id)! - t0).toBeLessThan(1000);
    }
  });

  it('a delayed job is started at its due time by a timer armed from the notification', async () => {
    apps.push(await createTestApp({ schema, providers: [WakeProcessor], queue: { worker: { pollIntervalMs: NO_POLL } } }));
    await waitFor('listener connected', async () => (await listenerBackends()).length === 1);
    const job = await queue.add('wake', 'ping', {}, { delayMs: 500 });
    const done = await waitForJobState(queue, job.id, JobState.Completed, 5000);
    expect(done.startedAt!.getTime()).toBeGreaterThanOrEqual(done.runAt.getTime());
    expect(done.startedAt!.getTime() - done.runAt.getTime()).toBeLessThan(1000);
  });

  it('the LISTEN connection comes back after it is terminated, and catches up by polling once', async () => {
    apps.push(await createTestApp({ schema, providers: [WakeProcessor], queue: { worker: { pollIntervalMs: NO_POLL } } }));
    const [{ pid }] = await waitFor('listener connected', async () => {
      const rows = await listenerBackends();
      return rows.length === 1 ? rows : undefined;
    });
    await sql('SELECT pg_terminate_backend($1)', [pid]);
    // Enqueued while the listener is down: only the catch-up poll after reconnecting can find it.
    const missed = await queue.add('wake', 'ping', { missed: true });
    await waitFor('listener reconnected', async () => {
      const rows = await listenerBackends();
      return rows.length === 1 && rows[0].pid !== pid;
    });
    await waitForJobState(queue, missed.id, JobState.Completed, 5000);
    const after = await queue.add('wake', 'ping', { after: true });
    await waitForJobState(queue, after.id, JobState.Completed, 5000);
  });

  it('with listen: false there is no LISTEN connection and polling finds jobs', async () => {
    apps.push(await createTestApp({ schema, providers: [WakeProcessor], queue: { worker: { listen: false, pollIntervalMs: 100 } } }));
    const job = await queue.add('wake', 'ping', {});
    await waitForJobState(queue, job.id, JobState.Completed, 5000);
    expect(await listenerBackends()).toEqual([]);
  });

  it('a producer that is also the worker wakes it in process (no LISTEN, no polling)', async () => {
    const app = await createTestApp({ schema, providers: [WakeProcessor], queue: { worker: { listen: false, pollIntervalMs: NO_POLL } } });
    apps.push(app);
    const local = app.get(QueueService);
    const job = await local.add('wake', 'ping', {});
    await waitForJobState(local, job.id, JobState.Completed, 2000);
  });
});
