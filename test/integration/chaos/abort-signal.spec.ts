import type { INestApplicationContext } from '@nestjs/common';
import { Handle, JobCancelledError, JobTimeoutError, Processor, QueueService, type ActiveJob, type Job } from '../../../lib';
import { createTestApp } from '../helpers/app';
import { dropSchema, uniqueSchema } from '../helpers/database';
import { waitForJobState } from '../helpers/jobs';
import { waitFor } from '../helpers/wait-for';

/**
 * What a running handler sees through job.signal: a cancellation reaches it within about a second
 * (by NOTIFY, or by the heartbeat when the worker does not LISTEN), a timeout aborts it, and a
 * handler that ignores its signal cannot store a late result.
 */
interface Seen {
  started?: number;
  aborted?: number;
  reason?: unknown;
  /** When the handler returned, long after its signal was aborted. */
  returned?: number;
}

/** What the handlers saw, by `queue:id:attempt`. */
const seen = new Map<string, Seen>();
const key = (job: Job) => `${job.queue}:${job.id}:${job.attempts}`;
const note = (job: Job) => {
  const entry = seen.get(key(job)) ?? {};
  seen.set(key(job), entry);
  return entry;
};

function signalProcessor(queue: string) {
  @Processor(queue, { concurrency: 4 })
  class SignalProcessor {
    /** Waits for its signal, then (ignoring it) returns a result that must not be stored. */
    @Handle('wait-for-abort')
    async waitForAbort(job: ActiveJob) {
      const entry = note(job);
      entry.started = Date.now();
      await new Promise<void>((resolve) =>
        job.signal.addEventListener('abort', () => {
          entry.aborted = Date.now();
          entry.reason = job.signal.reason;
          resolve();
        }, { once: true }),
      );
      await new Promise((r) => setTimeout(r, 100));
      entry.returned = Date.now();
      return { late: true };
    }

    /** Attempt 1 ignores its signal and returns long after its timeout; later attempts are quick. */
    @Handle('slow')
    async slow(job: ActiveJob<{ ms: number }>) {
      const entry = note(job);
      entry.started = Date.now();
      job.signal.addEventListener('abort', () => {
        entry.aborted = Date.now();
        entry.reason = job.signal.reason;
      }, { once: true });
      if (job.attempts === 1) {
        await new Promise((r) => setTimeout(r, job.data.ms));
        entry.returned = Date.now();
        return { late: job.attempts };
      }
      return { attempt: job.attempts };
    }

    @Handle('marker')
    marker() {
      return 'ok';
    }
  }
  return SignalProcessor;
}

describe.each([
  { listen: true, via: 'NOTIFY' },
  { listen: false, via: 'the heartbeat' },
])('job.signal with worker.listen: $listen', ({ listen, via }) => {
  const schema = uniqueSchema(listen ? 'sig_listen' : 'sig_poll');
  const q = listen ? 'sig_listen' : 'sig_poll';
  let app: INestApplicationContext;
  let queue: QueueService;

  beforeAll(async () => {
    app = await createTestApp({
      schema,
      providers: [signalProcessor(q)],
      queue: { worker: { listen, lockDurationMs: 1500, pollIntervalMs: 100 }, defaultJobOptions: { backoff: { type: 'fixed', delayMs: 10 } } },
    });
    queue = app.get(QueueService);
  });

  afterAll(async () => {
    await app?.close();
    await dropSchema(schema);
  });

  /** Waits until every outcome write queued so far went through: a job added now has completed. */
  async function flushWorker(): Promise<void> {
    const marker = await queue.add(q, 'marker', {});
    await waitForJobState(queue, marker.id, 'completed');
  }

  it(`aborts a running handler with JobCancelledError within about a second of cancel(), via ${via}`, async () => {
    const job = await queue.add(q, 'wait-for-abort', {});
    const entry = await waitFor('the handler to start', () => seen.get(`${q}:${job.id}:1`));
    await waitFor('the job to be active', async () => (await queue.getJob(job.id))?.state === 'active');

    const cancelledAt = Date.now();
    const cancelled = await queue.cancel(job.id);
    expect(cancelled.state).toBe('cancelled');
    await waitFor('the handler signal to be aborted', () => entry.aborted, 3000);
    expect(entry.aborted! - cancelledAt).toBeLessThan(listen ? 500 : 1200);
    expect(entry.reason).toBeInstanceOf(JobCancelledError);
    expect((entry.reason as JobCancelledError).jobId).toBe(job.id);

    // The handler's late return is not stored: the job stays cancelled.
    await waitFor('the handler to return', () => entry.returned);
    await flushWorker();
    expect(await queue.getJob(job.id)).toMatchObject({ state: 'cancelled', result: null, attempts: 1, lockedBy: null });
  });

  it('fails or retries a handler that ignores its signal at timeoutMs, and never stores its late result', async () => {
    const retried = await queue.add(q, 'slow', { ms: 1000 }, { timeoutMs: 200, maxAttempts: 2 });
    const failed = await queue.add(q, 'slow', { ms: 1000 }, { timeoutMs: 200, maxAttempts: 1 });

    const done = await waitForJobState(queue, retried.id, 'completed');
    expect(done).toMatchObject({ attempts: 2, result: { attempt: 2 } });
    expect(done.lastError).toMatchObject({ name: 'JobTimeoutError', attempt: 1, message: 'Job timed out after 200 ms' });
    const dead = await waitForJobState(queue, failed.id, 'failed');
    expect(dead).toMatchObject({ attempts: 1, result: null });
    expect(dead.lastError).toMatchObject({ name: 'JobTimeoutError', attempt: 1 });

    for (const id of [retried.id, failed.id]) {
      const first = seen.get(`${q}:${id}:1`)!;
      expect(first.reason).toBeInstanceOf(JobTimeoutError);
      expect(first.aborted! - first.started!).toBeGreaterThanOrEqual(190);
      expect(first.aborted! - first.started!).toBeLessThan(1000);
      // Both attempt-1 handlers return their late result after the job has moved on.
      await waitFor(`attempt 1 of job ${id} to return`, () => first.returned);
    }
    await flushWorker();
    expect(await queue.getJob(retried.id)).toMatchObject({ state: 'completed', attempts: 2, result: { attempt: 2 } });
    expect(await queue.getJob(failed.id)).toMatchObject({ state: 'failed', attempts: 1, result: null });
  });
});
