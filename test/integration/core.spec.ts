import type { INestApplicationContext } from '@nestjs/common';
// Job and ActiveJob imported as values on purpose: handlers' decorated signatures must compile
// with isolatedModules and decorator metadata (TS1272 otherwise).
import { ActiveJob, Handle, Job, JobState, Processor, QueueService } from '../../lib';
import { createTestApp } from './helpers/app';
import { dropSchema, sql, uniqueSchema } from './helpers/database';
import { waitForJobState } from './helpers/jobs';
import { waitFor } from './helpers/wait-for';

const schema = uniqueSchema('core');
const seen: string[] = [];
let failuresLeft = 0;

@Processor('email', { concurrency: 4 })
class EmailProcessor {
  @Handle('welcome')
  async welcome(job: Job<{ to: string }>) {
    seen.push(`welcome:${job.data.to}`);
    return { messageId: `msg-${job.data.to}`, attempt: job.attempts };
  }

  @Handle('flaky')
  async flaky(job: ActiveJob<{ n: number }>) {
    if (failuresLeft > 0) {
      failuresLeft--;
      throw new Error(`flaky failure, ${failuresLeft} left`);
    }
    return { ok: true, attempt: job.attempts };
  }

  @Handle('throws-string')
  throwsString() {
    throw 'just a string'; // eslint-disable-line no-throw-literal
  }

  @Handle('throws-unstorable')
  throwsUnstorable() {
    throw new Error('cut \ud83c and nul \u0000 here');
  }

  @Handle('returns-refused')
  returnsRefused() {
    return 'refused by a constraint';
  }

  @Handle('returns-unstorable')
  returnsUnstorable() {
    return { s: 'cut \ud83c' };
  }

  @Handle()
  async other(job: Job) {
    seen.push(`other:${job.name}`);
  }
}

@Processor('strict')
class StrictProcessor {
  @Handle('known')
  known() {
    return 'ok';
  }
}

describe('core engine through a real Nest app', () => {
  let app: INestApplicationContext;
  let queue: QueueService;

  beforeAll(async () => {
    app = await createTestApp({
      schema,
      providers: [EmailProcessor, StrictProcessor],
      // NOTE: unknownJobGraceMs 0: a job name no handler knows fails at once (the default hands it
      // back for a while, for a rolling deploy: see unknown-jobs.spec.ts).
      queue: { worker: { pollIntervalMs: 50, unknownJobGraceMs: 0 }, defaultJobOptions: { backoff: { type: 'fixed', delayMs: 10 } } },
    });
    queue = app.get(QueueService);
  });

  afterAll(async () => {
    await app?.close();
    await dropSchema(schema);
  });

  it('runs a job through its @Handle and stores the result', async () => {
    const job = await queue.add('email', 'welcome', { to: 'a@example.com' });
    expect(job).toMatchObject({ queue: 'email', name: 'welcome', state: JobState.Pending, attempts: 0, data: { to: 'a@example.com' } });
    expect(job.id).toMatch(/^\d+$/);
    const done = await waitForJobState(queue, job.id, JobState.Completed);
    expect(done.result).toEqual({ messageId: 'msg-a@example.com', attempt: 1 });
    expect(done.attempts).toBe(1);
    expect(done.maxAttempts).toBe(3);
    expect(done.startedAt).toBeInstanceOf(Date);
    expect(done.finishedAt).toBeInstanceOf(Date);
    expect(done.lockedBy).toBeNull();
    expect(seen).toContain('welcome:a@example.com');
  });

  it('routes unknown names to the catch-all handler', async () => {
    const job = await queue.add('email', 'digest', {});
    await waitForJobState(queue, job.id, JobState.Completed);
    expect(seen).toContain('other:digest');
  });

  it('retries with backoff until success and keeps the last error', async () => {
    failuresLeft = 2;
    const job = await queue.add('email', 'flaky', { n: 1 });
    const done = await waitForJobState(queue, job.id, JobState.Completed);
    expect(done.attempts).toBe(3);
    expect(done.result).toEqual({ ok: true, attempt: 3 });
    expect(done.lastError).toMatchObject({ name: 'Error', message: 'flaky failure, 0 left', attempt: 2 });
  });

  it('fails after maxAttempts with lastError, and retry() revives the job with a fresh budget', async () => {
    failuresLeft = 100;
    const job = await queue.add('email', 'flaky', { n: 2 }, { maxAttempts: 2 });
    const failed = await waitForJobState(queue, job.id, JobState.Failed);
    expect(failed.attempts).toBe(2);
    expect(failed.lastError?.message).toMatch(/flaky failure/);
    expect(failed.lastError?.stack).toMatch(/EmailProcessor\.flaky|flaky/);
    expect(failed.finishedAt).toBeInstanceOf(Date);

    failuresLeft = 0;
    const revived = await queue.retry(job.id);
    expect(revived.state).toBe(JobState.Pending);
    expect(revived.attempts).toBe(0);
    const done = await waitForJobState(queue, job.id, JobState.Completed);
    expect(done.attempts).toBe(1);
  });

  it('records a non-Error thrown value readably', async () => {
    const job = await queue.add('email', 'throws-string', {}, { maxAttempts: 1 });
    const failed = await waitForJobState(queue, job.id, JobState.Failed);
    expect(failed.lastError?.message).toContain('just a string');
  });

  it('stores errors and results jsonb would refuse as errors, without holding up other outcomes', async () => {
    const [thrower, returner, ...others] = await queue.addBulk<{ i?: number }>([
      { queue: 'email', name: 'throws-unstorable', data: {}, options: { maxAttempts: 1 } },
      { queue: 'email', name: 'returns-unstorable', data: {}, options: { maxAttempts: 1 } },
      ...Array.from({ length: 20 }, (_, i) => ({ queue: 'email', name: 'other', data: { i } })),
    ]);
    const thrown = await waitForJobState(queue, thrower.id, JobState.Failed);
    expect(thrown.lastError?.message).toBe('cut \ufffd and nul \ufffd here');
    const returned = await waitForJobState(queue, returner.id, JobState.Failed);
    expect(returned.lastError).toMatchObject({ name: 'InvalidJobDataError' });
    expect(returned.lastError?.message).toContain('surrogate');
    for (const job of others) await waitForJobState(queue, job.id, JobState.Completed);
  });

  it('an outcome the database refuses costs only its own job, not the others written with it', async () => {
    await sql(`ALTER TABLE "${schema}".queue_jobs ADD CONSTRAINT refuse_one CHECK (result IS NULL OR result <> '"refused by a constraint"'::jsonb)`);
    try {
      const [refused, ...others] = await queue.addBulk<{ i?: number }>([
        { queue: 'email', name: 'returns-refused', data: {} },
        ...Array.from({ length: 99 }, (_, i) => ({ queue: 'email', name: 'other', data: { i } })),
      ]);
      // Far sooner than the 30 s lease that would bring dropped outcomes back.
      for (const job of others) await waitForJobState(queue, job.id, JobState.Completed, 10_000);
      expect((await queue.getJob(refused.id))?.state).toBe(JobState.Active);
    } finally {
      await sql(`ALTER TABLE "${schema}".queue_jobs DROP CONSTRAINT refuse_one`);
    }
  });

  it('with unknownJobGraceMs 0, fails at once, without retrying, a job whose queue has no handler for its name', async () => {
    const job = await queue.add('strict', 'unknown-name', {}, { maxAttempts: 5 });
    const failed = await waitForJobState(queue, job.id, JobState.Failed);
    expect(failed.attempts).toBe(1);
    expect(failed.lastError).toMatchObject({ name: 'MissingHandlerError' });
    expect(failed.lastError?.message).toContain('"unknown-name"');
  });

  it('leaves jobs of queues without a processor in this process untouched', async () => {
    const job = await queue.add('someone-else', 'x', {});
    // A marker job queued after it in a handled queue proves the worker has been claiming since.
    const marker = await queue.add('email', 'welcome', { to: 'marker' });
    await waitForJobState(queue, marker.id, JobState.Completed);
    const untouched = await queue.getJob(job.id);
    expect(untouched).toMatchObject({ state: JobState.Pending, attempts: 0, maxAttempts: null, startedAt: null });
  });

  it('does not start delayed jobs early', async () => {
    const job = await queue.add('email', 'welcome', { to: 'later' }, { delayMs: 700 });
    const [{ due }] = await sql<{ due: Date }>(`SELECT run_at AS due FROM "${schema}".queue_jobs WHERE id = $1`, [job.id]);
    const done = await waitForJobState(queue, job.id, JobState.Completed);
    expect(done.startedAt!.getTime()).toBeGreaterThanOrEqual(due.getTime());
    expect(done.startedAt!.getTime() - done.createdAt.getTime()).toBeGreaterThanOrEqual(690);
  });

  it('runs a job given runAt at that time', async () => {
    const runAt = new Date(Date.now() + 400);
    const job = await queue.add('email', 'welcome', { to: 'at' }, { runAt });
    expect(job.runAt.getTime()).toBe(runAt.getTime());
    const done = await waitForJobState(queue, job.id, JobState.Completed);
    expect(done.startedAt!.getTime()).toBeGreaterThanOrEqual(runAt.getTime());
  });

  it('counts jobs per state, per queue and overall', async () => {
    const counts = await queue.getCounts('someone-else');
    expect(counts).toEqual({ pending: 1, active: 0, completed: 0, failed: 0, cancelled: 0, blocked: 0 });
    const all = await queue.getCounts();
    expect(all.completed).toBeGreaterThanOrEqual(5);
  });

  it('cancels a pending job, refuses to cancel a completed one, and retries a cancelled one', async () => {
    const job = await queue.add('email', 'welcome', { to: 'cancel-me' }, { delayMs: 60_000 });
    const cancelled = await queue.cancel(job.id);
    expect(cancelled.state).toBe(JobState.Cancelled);
    expect((await queue.cancel(job.id)).state).toBe(JobState.Cancelled);
    const revived = await queue.retry(job.id);
    expect(revived.state).toBe(JobState.Pending);
    await waitForJobState(queue, job.id, JobState.Completed);
    await expect(queue.cancel(job.id)).rejects.toMatchObject({ name: 'InvalidJobStateError' });
    await expect(queue.retry(job.id)).rejects.toMatchObject({ name: 'InvalidJobStateError' });
    await expect(queue.cancel('999999999')).rejects.toMatchObject({ name: 'JobNotFoundError' });
    await expect(queue.getJob('999999999')).resolves.toBeNull();
  });

  it('concurrent add() calls (grouped into shared inserts) each get their own job', async () => {
    const jobs = await Promise.all(Array.from({ length: 200 }, (_, i) => queue.add('email', 'welcome', { to: `concurrent-${i}` }, { priority: i % 3 })));
    expect(new Set(jobs.map((j) => j.id)).size).toBe(200);
    jobs.forEach((job, i) => expect(job).toMatchObject({ data: { to: `concurrent-${i}` }, priority: i % 3, state: JobState.Pending }));
    const stored = await sql<{ id: string; to: string; priority: number }>(
      `SELECT id, data->>'to' AS to, priority FROM "${schema}".queue_jobs WHERE id = ANY($1::bigint[])`,
      [jobs.map((j) => j.id)],
    );
    const byId = new Map(stored.map((r) => [r.id, r]));
    jobs.forEach((job, i) => expect(byId.get(job.id)).toEqual({ id: job.id, to: `concurrent-${i}`, priority: i % 3 }));
  });

  it('adds many jobs with addBulk in input order and runs them', async () => {
    const jobs = await queue.addBulk(
      Array.from({ length: 50 }, (_, i) => ({ queue: 'email', name: 'welcome', data: { to: `bulk-${i}` } })),
    );
    expect(jobs.map((j) => j.data.to)).toEqual(Array.from({ length: 50 }, (_, i) => `bulk-${i}`));
    await waitFor('bulk jobs done', async () => (await sql<{ n: number }>(
      `SELECT count(*)::int AS n FROM "${schema}".queue_jobs WHERE data->>'to' LIKE 'bulk-%' AND state = 'completed'`,
    ))[0].n === 50);
  });
});
