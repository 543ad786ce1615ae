import type { INestApplicationContext } from '@nestjs/common';
import { Handle, JobState, Processor, QueueService, type ActiveJob } from '../../lib';
import { createTestApp } from './helpers/app';
import { dropSchema, sql, uniqueSchema } from './helpers/database';
import { waitForJobState } from './helpers/jobs';
import { waitFor } from './helpers/wait-for';

const schema = uniqueSchema('snooze');
const runs = new Map<string, number>();

@Processor('snooze', { concurrency: 2, defaultJobOptions: { maxAttempts: 1 } })
class SnoozeProcessor {
  /** Not ready the first `times` runs: snoozes for `ms`. */
  @Handle('poll')
  poll(job: ActiveJob<{ times: number; ms: number }>) {
    const n = (runs.get(job.id) ?? 0) + 1;
    runs.set(job.id, n);
    if (n <= job.data.times) return job.snooze(job.data.ms);
    return { runs: n, attempts: job.attempts };
  }

  /** Fails once (for a lastError), then snoozes, then completes. */
  @Handle('flaky')
  flaky(job: ActiveJob) {
    const n = (runs.get(job.id) ?? 0) + 1;
    runs.set(job.id, n);
    if (n === 1) throw new Error('first run fails');
    if (n === 2) return job.snooze(10);
    return 'done';
  }

  /** Snoozes with the delay given (JSON cannot carry Infinity or NaN: they come as their names). */
  @Handle('bad')
  bad(job: ActiveJob<{ ms: unknown }>) {
    const ms = job.data.ms === 'Infinity' || job.data.ms === 'NaN' ? Number(job.data.ms) : job.data.ms;
    return job.snooze(ms as number);
  }
}

describe('snooze', () => {
  let app: INestApplicationContext;
  let queue: QueueService;

  beforeAll(async () => {
    app = await createTestApp({ schema, providers: [SnoozeProcessor], queue: { worker: { pollIntervalMs: 50 } } });
    queue = app.get(QueueService);
  });
  afterAll(async () => {
    await app?.close();
    await dropSchema(schema);
  });

  it('ends the attempt without counting it, runs again after the delay, and keeps lastError', async () => {
    const job = await queue.add('snooze', 'poll', { times: 3, ms: 150 });
    const done = await waitForJobState(queue, job.id, JobState.Completed);
    // maxAttempts is 1: three snoozes consumed none of it.
    expect(done.result).toEqual({ runs: 4, attempts: 1 });
    expect(done.attempts).toBe(1);
    expect(done.claims).toBe(4);
    expect(done.lastError).toBeNull();
    // The delay was honoured between runs (started_at moves by at least the delay each time).
    expect(done.finishedAt!.getTime() - done.createdAt.getTime()).toBeGreaterThanOrEqual(3 * 150);

    const flaky = await queue.add('snooze', 'flaky', {}, { maxAttempts: 2, backoff: { type: 'fixed', delayMs: 10 } });
    const flakyDone = await waitForJobState(queue, flaky.id, JobState.Completed);
    expect(flakyDone.attempts).toBe(2);
    expect(flakyDone.lastError).toMatchObject({ message: 'first run fails', attempt: 1 });
  });

  it.each([[-1], [Infinity], [NaN], [1.5], ['10']])('a bad delay (%p) fails the attempt with a typed error', async (ms) => {
    const job = await queue.add('snooze', 'bad', { ms: typeof ms === 'number' && !Number.isFinite(ms) ? String(ms) : ms });
    const failed = await waitForJobState(queue, job.id, JobState.Failed);
    expect(failed.lastError).toMatchObject({ name: 'InvalidJobOptionError' });
    expect(failed.lastError!.message).toContain('snooze(delayMs)');
  });

  it('a snoozed job is stored pending with its run time moved', async () => {
    const job = await queue.add('snooze', 'poll', { times: 1, ms: 60_000 });
    const pending = await waitFor('the job to have run once and be pending again', async () => {
      const [row] = await sql<{ claims: number; attempts: number; state: string; run_at: Date }>(
        `SELECT claims, attempts, state, run_at FROM "${schema}".queue_jobs WHERE id = $1`,
        [job.id],
      );
      return row.claims === 1 && row.state === 'pending' ? row : undefined;
    });
    expect(pending.attempts).toBe(0);
    expect(pending.run_at.getTime()).toBeGreaterThan(Date.now() + 50_000);
  });
});
