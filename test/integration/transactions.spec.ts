import type { INestApplicationContext } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { Handle, JobState, Processor, QueueService, type ActiveJob } from '../../lib';
import { createTestApp } from './helpers/app';
import { dropSchema, sql, uniqueSchema } from './helpers/database';
import { waitForJobState } from './helpers/jobs';
import { waitFor } from './helpers/wait-for';

const schema = uniqueSchema('tx');
const handled: string[] = [];

@Processor('orders')
class OrderProcessor {
  @Handle('confirm')
  confirm(job: ActiveJob<{ orderId: number }>) {
    handled.push(job.id);
    return { confirmed: job.data.orderId };
  }

  @Handle('charge')
  charge(job: ActiveJob<{ orderId: number; fail?: boolean }>) {
    return job.transaction(async (manager) => {
      await manager.query(`INSERT INTO "${schema}".charges (order_id, job_id) VALUES ($1, $2)`, [job.data.orderId, job.id]);
      if (job.data.fail) throw new Error('card declined');
      return { charged: job.data.orderId };
    });
  }
}

describe('transactions', () => {
  let app: INestApplicationContext;
  let queue: QueueService;
  let dataSource: DataSource;

  beforeAll(async () => {
    app = await createTestApp({ schema, providers: [OrderProcessor], queue: { worker: { pollIntervalMs: 50 } } });
    queue = app.get(QueueService);
    dataSource = app.get(DataSource);
    await sql(`CREATE TABLE "${schema}".orders (id serial PRIMARY KEY, note text)`);
    await sql(`CREATE TABLE "${schema}".charges (order_id int NOT NULL, job_id bigint NOT NULL UNIQUE)`);
  });

  afterAll(async () => {
    await app?.close();
    await dropSchema(schema);
  });

  it('enqueue in a rolled-back transaction leaves no job', async () => {
    let jobId: string | undefined;
    await expect(
      dataSource.transaction(async (manager) => {
        await manager.query(`INSERT INTO "${schema}".orders (note) VALUES ('rolled back')`);
        jobId = (await queue.add('orders', 'confirm', { orderId: -1 }, { manager })).id;
        // Visible inside the transaction...
        expect((await manager.query(`SELECT count(*)::int AS n FROM "${schema}".queue_jobs WHERE id = $1`, [jobId]))[0].n).toBe(1);
        throw new Error('abort the business transaction');
      }),
    ).rejects.toThrow('abort the business transaction');
    expect(jobId).toBeDefined();
    // ...and gone with it.
    expect(await queue.getJob(jobId!)).toBeNull();
    expect(await sql(`SELECT * FROM "${schema}".orders`)).toEqual([]);
  });

  it('enqueue in a committed transaction runs the job, and only after the commit', async () => {
    const job = await dataSource.transaction(async (manager) => {
      const [{ id }] = await manager.query(`INSERT INTO "${schema}".orders (note) VALUES ('kept') RETURNING id`);
      const enqueued = await queue.add('orders', 'confirm', { orderId: id }, { manager });
      // Not visible to the worker (or anyone) before commit.
      await new Promise((r) => setTimeout(r, 150));
      expect(handled).not.toContain(enqueued.id);
      expect(await queue.getJob(enqueued.id)).toBeNull();
      return enqueued;
    });
    const done = await waitForJobState(queue, job.id, JobState.Completed);
    expect(done.result).toEqual({ confirmed: job.data.orderId });
  });

  it('job.transaction commits the handler effects and the completion together', async () => {
    const job = await queue.add('orders', 'charge', { orderId: 7 });
    const done = await waitForJobState(queue, job.id, JobState.Completed);
    expect(done.result).toEqual({ charged: 7 });
    expect(await sql(`SELECT order_id FROM "${schema}".charges WHERE job_id = $1`, [job.id])).toEqual([{ order_id: 7 }]);
  });

  it('job.transaction rolls the effects back when the handler fails, and the retry runs them once', async () => {
    const job = await queue.add('orders', 'charge', { orderId: 8, fail: true }, { maxAttempts: 2, backoff: { type: 'fixed', delayMs: 10 } });
    const failed = await waitForJobState(queue, job.id, JobState.Failed);
    expect(failed.attempts).toBe(2);
    expect(failed.lastError?.message).toBe('card declined');
    expect(await sql(`SELECT * FROM "${schema}".charges WHERE job_id = $1`, [job.id])).toEqual([]);
  });

  it('a committed job.transaction is not overwritten and has exactly one effect', async () => {
    const jobs = await queue.addBulk(Array.from({ length: 30 }, (_, i) => ({ queue: 'orders', name: 'charge', data: { orderId: 100 + i } })));
    await waitFor('charges done', async () => (await queue.getCounts('orders')).pending === 0 && (await queue.getCounts('orders')).active === 0);
    const rows = await sql<{ n: number }>(`SELECT count(*)::int AS n FROM "${schema}".charges WHERE job_id = ANY($1::bigint[])`, [jobs.map((j) => j.id)]);
    expect(rows[0].n).toBe(30);
    for (const j of jobs) expect((await queue.getJob(j.id))?.state).toBe(JobState.Completed);
  });
});
