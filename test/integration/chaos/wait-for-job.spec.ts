import { Client } from 'pg';
import { InvalidJobOptionError, JobNotFoundError, QueueService, WaitForJobTimeoutError } from '../../../lib';
import { createTestApp } from '../helpers/app';
import { GlobalEventReceiver } from '../../../lib/events/global-event-receiver';
import { JobEventsStore } from '../../../lib/events/job-events.store';
import { JobWaiter } from '../../../lib/events/job-waiter';
import { DATABASE_URL } from '../helpers/database';
import { waitFor } from '../helpers/wait-for';
import { useChaosEnvironment } from './fixtures/chaos-db';

/**
 * `waitForJob()` in a producer process (no worker) while the job runs in a child worker process:
 * resolved through the worker's global completion notification, with a poll as the fallback.
 */
const env = useChaosEnvironment('chaos_wait');
const { schema, workers } = env;

describe('waitForJob across processes', () => {
  let raw: Client;
  const payloads: string[] = [];

  beforeAll(async () => {
    raw = new Client({ connectionString: DATABASE_URL });
    await raw.connect();
    raw.on('notification', (n) => payloads.push(n.payload ?? ''));
    await raw.query(`LISTEN "${schema}.queue_jobs"`);
    await workers.start({ queue: 'wait', concurrency: 4, worker: { pollIntervalMs: 50, unknownJobGraceMs: 0 } });
  });
  afterAll(async () => {
    await raw?.end();
  });
  afterEach(async () => {
    // Nothing is left behind once a wait settled: no watcher, and (soon) no presence lock.
    expect(env.app!.get(GlobalEventReceiver).openWatches).toBe(0);
    expect(env.app!.get(JobWaiter).size).toBe(0);
    const store = await env.app!.get(JobEventsStore).get();
    await waitFor('the presence locks to be released', async () => (await store.listenedTypeCodes()).length === 0);
  });

  it('resolves with the completed job when it finishes in another process, told by its notification', async () => {
    const job = await env.queue.add('wait', 'record', { ms: 300 });
    const done = await env.queue.waitForJob<unknown, { pid: number }>(job.id, { timeoutMs: 20_000 });
    expect(done).toMatchObject({ id: job.id, state: 'completed' });
    expect(done.result!.pid).toBe(workers.all()[0].pid);
    // The worker sent the completion as a global event (it saw the waiter's presence).
    await waitFor('the completion notification', () => payloads.some((p) => p.startsWith('{"t":"ev"') && p.includes(`,"${job.id}","wait","record",`)));
  });

  it('resolves with a failed job, and with a cancelled one', async () => {
    const failing = await env.queue.add('wait', 'no-such-handler', {});
    await expect(env.queue.waitForJob(failing.id, { timeoutMs: 20_000 })).resolves.toMatchObject({ id: failing.id, state: 'failed' });
    const parked = await env.queue.add('nobody', 'x', {});
    const waiting = env.queue.waitForJob(parked.id, { timeoutMs: 20_000 });
    await env.queue.cancel(parked.id);
    await expect(waiting).resolves.toMatchObject({ id: parked.id, state: 'cancelled' });
  });

  it('resolves at once for a job that already finished', async () => {
    const job = await env.queue.add('wait', 'noop', {});
    await env.queue.waitForJob(job.id, { timeoutMs: 20_000 });
    const started = Date.now();
    await expect(env.queue.waitForJob(job.id, { timeoutMs: 5000 })).resolves.toMatchObject({ state: 'completed' });
    expect(Date.now() - started).toBeLessThan(2000);
  });

  it('rejects with WaitForJobTimeoutError when the job does not finish in time', async () => {
    const job = await env.queue.add('nobody', 'x', {});
    const started = Date.now();
    const error = await env.queue.waitForJob(job.id, { timeoutMs: 300 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(WaitForJobTimeoutError);
    expect(error).toMatchObject({ jobId: job.id, timeoutMs: 300, lastState: 'pending' });
    expect(Date.now() - started).toBeGreaterThanOrEqual(290);
  });

  it('refuses a job that does not exist, and bad arguments', async () => {
    await expect(env.queue.waitForJob('999999999', { timeoutMs: 5000 })).rejects.toBeInstanceOf(JobNotFoundError);
    await expect(env.queue.waitForJob('abc')).rejects.toBeInstanceOf(InvalidJobOptionError);
    await expect(env.queue.waitForJob('1', { timeoutMs: 0 })).rejects.toThrow(/Invalid timeoutMs: 0/);
    await expect(env.queue.waitForJob('1', { timeout: 5 } as never)).rejects.toThrow(/Invalid timeout/);
  });

  it('falls back to reading the jobs when this process cannot LISTEN (worker.listen: false)', async () => {
    const polling = await createTestApp({ schema, queue: { worker: { listen: false } } });
    try {
      const jobs = await Promise.all(Array.from({ length: 10 }, (_, i) => env.queue.add('wait', 'record', { ms: 50 + 20 * i })));
      const done = await Promise.all(jobs.map((job) => polling.get(QueueService).waitForJob(job.id, { timeoutMs: 20_000 })));
      expect(done.map((j) => [j.id, j.state])).toEqual(jobs.map((j) => [j.id, 'completed']));
      expect(polling.get(GlobalEventReceiver).openWatches).toBe(0);
      expect(polling.get(JobWaiter).size).toBe(0);
    } finally {
      await polling.close();
    }
  });

  it('many concurrent waits on one job settle together and leave nothing behind', async () => {
    const job = await env.queue.add('wait', 'record', { ms: 200 });
    const all = await Promise.all(Array.from({ length: 20 }, () => env.queue.waitForJob(job.id, { timeoutMs: 20_000 })));
    expect(new Set(all.map((j) => j.state))).toEqual(new Set(['completed']));
  });
});
