import type { INestApplicationContext } from '@nestjs/common';
import { Handle, JobState, Processor, QueueService, QueueUnavailableError, type Job } from '../../lib';
import { createTestApp } from './helpers/app';
import { DATABASE_URL, dropSchema, sql, uniqueSchema } from './helpers/database';
import { useProxiedDatabase } from './helpers/proxied-database';
import { TcpProxy } from './helpers/tcp-proxy';
import { waitFor } from './helpers/wait-for';

const schema = uniqueSchema('outage');

@Processor('outage', { concurrency: 10 })
class OutageProcessor {
  @Handle('work')
  async work(job: Job<{ i: number }>) {
    await new Promise((r) => setTimeout(r, 5));
    return job.data.i;
  }
}

describe('database outages', () => {
  const env = useProxiedDatabase(schema);
  const { proxy } = env;

  const count = async (state: string) =>
    (await sql<{ n: number }>(`SELECT count(*)::int AS n FROM "${schema}".queue_jobs WHERE state = $1`, [state]))[0].n;

  it('a worker rides out an outage on its own, and add() fails fast and clearly meanwhile', async () => {
    const app = await createTestApp({
      schema,
      providers: [OutageProcessor],
      typeorm: { url: TcpProxy.urlThrough(DATABASE_URL, proxy.port), connectTimeoutMS: 2000 },
      queue: { worker: { pollIntervalMs: 100, lockDurationMs: 3000 } },
    });
    try {
      await env.queue.addBulk(Array.from({ length: 300 }, (_, i) => ({ queue: 'outage', name: 'work', data: { i } })));
      await waitFor('some jobs done', async () => (await count('completed')) > 20);

      await proxy.cut();
      const t0 = Date.now();
      const error = await app.get(QueueService).add('outage', 'work', { i: -1 }).catch((e: unknown) => e);
      expect(`${(error as Error).name}: ${(error as Error).message}`).toMatch(/^QueueUnavailableError: Queue database unavailable during insert/);
      expect(error).toBeInstanceOf(QueueUnavailableError);
      expect(Date.now() - t0).toBeLessThan(5000);
      // Jobs added during the outage by another service are picked up after it.
      await env.queue.addBulk(Array.from({ length: 100 }, (_, i) => ({ queue: 'outage', name: 'work', data: { i: 1000 + i } })));
      await new Promise((r) => setTimeout(r, 1500)); // the outage lasts a while: longer than a poll and a heartbeat
      await proxy.restore();

      await waitFor('every job completed after the outage', async () => (await count('completed')) === 400, 30_000);
      expect(await count('active')).toBe(0);
      expect(await count('pending')).toBe(0);
    } finally {
      await proxy.restore().catch(() => undefined);
      await app.close();
    }
  });

  it('an app closes in bounded time while the database is down', async () => {
    const app = await createTestApp({
      schema,
      providers: [OutageProcessor],
      typeorm: { url: TcpProxy.urlThrough(DATABASE_URL, proxy.port), connectTimeoutMS: 2000 },
      queue: { worker: { pollIntervalMs: 100, shutdownTimeoutMs: 1000, lockDurationMs: 1500 } },
    });
    await env.queue.addBulk(Array.from({ length: 200 }, (_, i) => ({ queue: 'outage', name: 'work', data: { i } })));
    await waitFor('worker busy', async () => (await count('active')) > 0 || (await count('pending')) < 200);
    await proxy.cut();
    const t0 = Date.now();
    await app.close();
    expect(Date.now() - t0).toBeLessThan(10_000);
    await proxy.restore();
    // Whatever it held when it lost the database is rescued by the next worker: nothing is lost.
    const next = await createTestApp({ schema, providers: [OutageProcessor], queue: { worker: { pollIntervalMs: 100, lockDurationMs: 1000 } } });
    try {
      await waitFor('all jobs completed by the next worker', async () => (await count('pending')) + (await count('active')) === 0, 30_000);
      expect(await count('failed')).toBe(0);
    } finally {
      await next.close();
    }
  });

  it('a connection lost in the middle of a bulk COPY stores none of it, and the next one works', async () => {
    const app = await createTestApp({
      schema,
      typeorm: { url: TcpProxy.urlThrough(DATABASE_URL, proxy.port), connectTimeoutMS: 2000 },
      queue: { worker: false },
    });
    try {
      const bulk = app.get(QueueService).addBulk(Array.from({ length: 150_000 }, (_, i) => ({ queue: 'bulk-cut', name: 'work', data: { i } })));
      const settled = bulk.then(() => 'resolved', (e: unknown) => e);
      await waitFor('the COPY under way', async () =>
        (await sql(`SELECT 1 FROM pg_stat_progress_copy p JOIN pg_stat_activity a USING (pid) WHERE a.query LIKE '%COPY "${schema}"%'`)).length > 0,
      );
      await proxy.cut();
      const error = await settled;
      expect(error).toBeInstanceOf(QueueUnavailableError);
      await proxy.restore();
      // The server rolled the COPY back when its client went away: nothing of it is stored.
      await waitFor('the cut session gone', async () =>
        (await sql(`SELECT 1 FROM pg_stat_activity WHERE query LIKE '%COPY "${schema}"%' AND pid <> pg_backend_pid()`)).length === 0,
      );
      const cutRows = async () => (await sql<{ n: number }>(`SELECT count(*)::int AS n FROM "${schema}".queue_jobs WHERE queue = 'bulk-cut'`))[0].n;
      expect(await cutRows()).toBe(0);
      const jobs = await app.get(QueueService).addBulk(Array.from({ length: 500 }, (_, i) => ({ queue: 'bulk-cut', name: 'work', data: { i } })));
      expect(jobs).toHaveLength(500);
      expect(await cutRows()).toBe(500);
    } finally {
      await proxy.restore().catch(() => undefined);
      await app.close();
    }
  });

  it('a producer-only app closes in bounded time while the database is down', async () => {
    const app = await createTestApp({
      schema,
      typeorm: { url: TcpProxy.urlThrough(DATABASE_URL, proxy.port), connectTimeoutMS: 2000 },
      queue: { worker: false },
    });
    const job = await app.get(QueueService).add('outage', 'work', { i: 0 });
    await proxy.cut();
    const t0 = Date.now();
    await app.close();
    expect(Date.now() - t0).toBeLessThan(5000);
    await proxy.restore();
    // What it enqueued before the outage is still there.
    expect((await env.queue.getJob(job.id))?.state).toBe(JobState.Pending);
  });
});
