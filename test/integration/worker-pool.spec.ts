import type { INestApplicationContext } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { Handle, JobState, Processor, QueueService, type Job } from '../../lib';
import { createTestApp } from './helpers/app';
import { dropSchema, sql, uniqueSchema } from './helpers/database';
import { waitForJobState } from './helpers/jobs';
import { waitFor } from './helpers/wait-for';

// Issue 9, item 1: the worker's own statements (heartbeat, claim, outcome writes, rescue) must not
// wait behind the application's queries on TypeORM's pool.
const schema = uniqueSchema('wpool');
const runs: string[] = [];

@Processor('starved', { concurrency: 1 })
class SleepyProcessor {
  constructor(private readonly dataSource: DataSource) {}

  @Handle('sleep')
  async sleep(job: Job) {
    runs.push(job.id);
    // Holds the app's only pooled connection for longer than the lease.
    await this.dataSource.query('SELECT pg_sleep(6)');
  }
}

@Processor('starved', { concurrency: 1 })
class WatchingProcessor {
  @Handle('sleep')
  sleep(job: Job) {
    runs.push(job.id);
  }
}

describe('the worker pool', () => {
  const apps: INestApplicationContext[] = [];

  afterAll(async () => {
    for (const app of apps) await app.close();
    await dropSchema(schema);
  });

  it("keeps a lease alive while the handler holds the app's only connection: the job is not run twice", async () => {
    const starved = await createTestApp({
      schema,
      providers: [SleepyProcessor],
      typeorm: { poolSize: 1 },
      queue: { worker: { lockDurationMs: 1500, pollIntervalMs: 100 } },
    });
    apps.push(starved);
    const queue = starved.get(QueueService);
    const job = await queue.add('starved', 'sleep', {});
    // NOTE: read with a connection of the test's own: the app's only one is busy with the handler.
    await waitFor('the job running', () => runs.length > 0);
    // A second worker on the same queue: it reruns the job if the first one's lease lapses.
    const other = await createTestApp({ schema, providers: [WatchingProcessor], queue: { worker: { lockDurationMs: 1500, pollIntervalMs: 100 } } });
    apps.push(other);
    const done = await waitForJobState(other.get(QueueService), job.id, JobState.Completed, 30_000);
    expect({ runs, attempts: done.attempts, claims: done.claims }).toEqual({ runs: [job.id], attempts: 1, claims: 1 });
    const [{ n }] = await sql<{ n: number }>(`SELECT count(*)::int AS n FROM "${schema}".queue_jobs WHERE state <> 'completed'`);
    expect(n).toBe(0);
  });
});
