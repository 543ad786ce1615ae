import type { INestApplicationContext } from '@nestjs/common';
import { ActiveJob, Handle, Job, JobState, Processor, QueueError, QueueService } from '../../lib';
import { createTestApp } from './helpers/app';
import { dropSchema, sql, uniqueSchema } from './helpers/database';
import { waitForJobState } from './helpers/jobs';
import { PgBouncer } from './helpers/pgbouncer';
import { waitFor } from './helpers/wait-for';

// Issue 9, item 3: behind PgBouncer in transaction mode (1.18: no prepared-statement support),
// with `listen: false` and `preparedStatements: false`, the main paths work.
const schema = uniqueSchema('bouncer');
const table = `"${schema}".queue_jobs`;
let flakyFailures = 0;

@Processor('bounce', { concurrency: 8, defaultJobOptions: { backoff: { type: 'fixed', delayMs: 10 } } })
class BounceProcessor {
  @Handle('echo')
  echo(job: Job<{ n: number }>) {
    return { n: job.data.n };
  }

  @Handle('flaky')
  flaky(job: Job) {
    if (flakyFailures > 0) {
      flakyFailures--;
      throw new Error('flaky');
    }
    return { attempt: job.attempts };
  }

  @Handle('fail')
  fail() {
    throw new Error('always fails');
  }

  @Handle('hold')
  async hold(job: ActiveJob) {
    await new Promise((resolve) => job.signal.addEventListener('abort', resolve));
  }
}

describe('behind PgBouncer in transaction mode', () => {
  // NOTE: fewer server connections than the app has clients: statements of one client connection
  // land on different server connections, which is what breaks named prepared statements.
  const bouncer = new PgBouncer({ poolMode: 'transaction', defaultPoolSize: 3 });
  let app: INestApplicationContext;
  let queue: QueueService;

  beforeAll(async () => {
    await bouncer.start();
    app = await createTestApp({
      schema,
      providers: [BounceProcessor],
      typeorm: { url: bouncer.url },
      queue: { preparedStatements: false, worker: { listen: false, pollIntervalMs: 50 } },
    });
    queue = app.get(QueueService);
  });

  afterAll(async () => {
    await app?.close();
    await bouncer.stop();
    await dropSchema(schema);
  });

  it('add(), getJob() and a worker draining jobs', async () => {
    const jobs = await Promise.all(Array.from({ length: 60 }, (_, n) => queue.add('bounce', 'echo', { n }, n % 2 ? { priority: 1 } : {})));
    expect(new Set(jobs.map((j) => j.id)).size).toBe(60);
    for (const job of jobs) {
      const done = await waitForJobState(queue, job.id, JobState.Completed);
      expect(done.result).toEqual({ n: job.data.n });
    }
  });

  it('addBulk by statement and by COPY', async () => {
    const small = await queue.addBulk(Array.from({ length: 10 }, (_, n) => ({ queue: 'bounce', name: 'echo', data: { n } })));
    const copied = await queue.addBulk(Array.from({ length: 2000 }, (_, n) => ({ queue: 'bounce', name: 'echo', data: { n } })));
    const delayed = await queue.addBulk(Array.from({ length: 100 }, (_, n) => ({ queue: 'bounce', name: 'echo', data: { n }, options: { delayMs: 1 } })));
    const ids = [...small, ...copied, ...delayed].map((j) => j.id);
    expect(new Set(ids).size).toBe(2110);
    await waitFor('every bulk job completed', async () => {
      const [{ n }] = await sql<{ n: number }>(`SELECT count(*)::int AS n FROM ${table} WHERE id = ANY($1::bigint[]) AND state = 'completed'`, [ids]);
      return n === ids.length;
    }, 60_000);
  });

  it('retries with backoff, fails a job that keeps failing, and counts', async () => {
    flakyFailures = 2;
    const flaky = await queue.add('bounce', 'flaky', {}, { maxAttempts: 5 });
    const failing = await queue.add('bounce', 'fail', {}, { maxAttempts: 2 });
    expect((await waitForJobState(queue, flaky.id, JobState.Completed)).result).toEqual({ attempt: 3 });
    const failed = await waitForJobState(queue, failing.id, JobState.Failed);
    expect(failed).toMatchObject({ attempts: 2, lastError: { message: 'always fails' } });
    const counts = await queue.getCounts('bounce');
    expect(counts).toMatchObject({ failed: 1, pending: 0, active: 0 });
    expect((await queue.getCounts()).completed).toBeGreaterThanOrEqual(2111);
  });

  it('cancels a pending job and an active one, and retries a cancelled one', async () => {
    const later = await queue.add('bounce', 'echo', { n: 1 }, { delayMs: 60_000 });
    expect((await queue.cancel(later.id)).state).toBe(JobState.Cancelled);
    const held = await queue.add('bounce', 'hold', {});
    await waitForJobState(queue, held.id, JobState.Active);
    expect((await queue.cancel(held.id)).state).toBe(JobState.Cancelled);
    // Without LISTEN the cancellation reaches the handler through the heartbeat; the row stays cancelled.
    await waitFor('the held job no longer running', async () => (await queue.getJob(held.id))?.lockedBy === null);
    const revived = await queue.retry(later.id);
    expect(revived.state).toBe(JobState.Pending);
  });
});

describe('behind PgBouncer in transaction mode, with prepared statements on', () => {
  const bouncer = new PgBouncer({ poolMode: 'transaction', defaultPoolSize: 2 });
  const prepSchema = uniqueSchema('bouncerp');
  let app: INestApplicationContext;

  beforeAll(async () => {
    await bouncer.start();
    app = await createTestApp({ schema: prepSchema, typeorm: { url: bouncer.url }, queue: { worker: false } });
  });

  afterAll(async () => {
    await app?.close();
    await bouncer.stop();
    await dropSchema(prepSchema);
  });

  it('the statements collide, and every failure reaches the caller as a typed QueueError', async () => {
    const queue = app.get(QueueService);
    const calls: Promise<unknown>[] = [];
    for (let round = 0; round < 6; round++) {
      for (let i = 0; i < 10; i++) calls.push(queue.add('prep', 'n', { i }, i % 2 ? { priority: 2 } : {}));
      calls.push(queue.getCounts(), queue.getCounts('prep'), queue.getJob('1'));
    }
    const outcomes = await Promise.allSettled(calls);
    const failures = outcomes.flatMap((o) => (o.status === 'rejected' ? [o.reason as unknown] : []));
    // PgBouncer 1.18 hands a client's statements to whichever server connection is free.
    expect(failures.length).toBeGreaterThan(0);
    const raw = failures.filter((e) => !(e instanceof QueueError)).map((e) => `${(e as Error)?.constructor?.name}: ${(e as Error)?.message}`);
    expect(raw).toEqual([]);
    expect(failures.map((e) => (e as Error).name)).toEqual(failures.map(() => 'QueueDatabaseError'));
  });
});
