import type { INestApplicationContext } from '@nestjs/common';
import { Handle, JobCancelledError, JobLeaseLostError, JobState, JobTimeoutError, Processor, QueueService, type ActiveJob } from '../../lib';
import { createTestApp } from './helpers/app';
import { dropSchema, uniqueSchema } from './helpers/database';
import { HandlerRuns, pause } from './helpers/handler-runs';
import { waitForJobState } from './helpers/jobs';
import { CapturingLogger } from './helpers/log-capture';
import { waitFor } from './helpers/wait-for';

/**
 * `concurrency` bounds handler code actually running in this process: an attempt aborted by its
 * timeout or a cancellation keeps its slot until the handler's promise settles, even when the
 * handler ignores its signal (TypeORM queries take none). Running attempts are keyed by job and
 * claim, so a cancelled run is aborted even when the job was retried and claimed again here.
 */
const schema = uniqueSchema('slots');
const runs = new HandlerRuns();

@Processor('slots', { concurrency: 1 })
class SlotProcessor {
  /** Ignores its signal and sleeps past its timeout. */
  @Handle('stubborn')
  async stubborn(job: ActiveJob<{ ms: number }>) {
    const run = runs.start(job);
    await pause(job.data.ms);
    runs.end(run);
  }

  @Handle('quick')
  quick(job: ActiveJob) {
    runs.end(runs.start(job));
  }
}

@Processor('rerun', { concurrency: 2 })
class RerunProcessor {
  /** Its first claim waits for its signal (up to 8 s); a later claim returns at once. */
  @Handle('long')
  async long(job: ActiveJob) {
    const run = runs.start(job);
    if (job.claims === 1) await pause(8000, job.signal);
    runs.end(run);
  }
}

describe('concurrency slots and aborted attempts', () => {
  let app: INestApplicationContext;
  let queue: QueueService;
  const logger = new CapturingLogger();

  beforeAll(async () => {
    app = await createTestApp({
      schema,
      providers: [SlotProcessor, RerunProcessor],
      logger,
      queue: { worker: { listen: false, pollIntervalMs: 50 } },
    });
    queue = app.get(QueueService);
  });

  afterAll(async () => {
    await app?.close();
    await dropSchema(schema);
  });

  it('a timed-out handler that ignores its signal keeps its slot until it returns, and is logged', async () => {
    // NOTE: each handler outlives its abort by 1.8 s, well past the 1 s after which it is reported.
    const jobs = await Promise.all(
      [0, 1, 2].map(() => queue.add('slots', 'stubborn', { ms: 2000 }, { timeoutMs: 200, maxAttempts: 1 })),
    );
    await waitFor('the three handler bodies to end', () => jobs.every((j) => runs.of(j.id)[0]?.ended), 20_000);
    expect(runs.maxConcurrent).toBe(1);
    for (const j of jobs) {
      const done = await waitForJobState(queue, j.id, JobState.Failed);
      expect(done.lastError?.name).toBe(JobTimeoutError.name);
    }
    const overrun = logger.find('warn', new RegExp(`job ${jobs[0].id} \\(queue "slots", name "stubborn"\\).*still running`, 'i'));
    expect(overrun).toHaveLength(1);
    expect(overrun[0].context).toBe('QueueWorker');
  });

  it('a cancelled handler that ignores its signal keeps its slot until it returns', async () => {
    const stubborn = await queue.add('slots', 'stubborn', { ms: 1500 });
    await waitFor('the stubborn job to start', () => runs.of(stubborn.id)[0]);
    const quick = await queue.add('slots', 'quick', {});
    await queue.cancel(stubborn.id);
    await waitForJobState(queue, quick.id, JobState.Completed);
    const [first] = runs.of(stubborn.id);
    expect(first.ended).toBeDefined();
    expect(runs.of(quick.id)[0].started).toBeGreaterThanOrEqual(first.ended!);
  });

  it('cancel() then retry() without LISTEN: the cancelled run is aborted and never overlaps its retry', async () => {
    const job = await queue.add('rerun', 'long', {});
    await waitFor('the first run to start', () => runs.of(job.id)[0]);
    await queue.cancel(job.id);
    await queue.retry(job.id);
    await waitForJobState(queue, job.id, JobState.Completed, 20_000);
    const [first] = await waitFor('the first run to end', () => (runs.of(job.id)[0]?.ended ? runs.of(job.id) : undefined), 20_000);
    expect(first.aborted).toBeDefined();
    expect(first.aborted! - first.started).toBeLessThan(5000);
    expect([JobCancelledError.name, JobLeaseLostError.name]).toContain((first.reason as Error).name);
    expect(runs.of(job.id)).toHaveLength(2);
    expect(runs.overlaps()).toEqual([]);
  });
});
