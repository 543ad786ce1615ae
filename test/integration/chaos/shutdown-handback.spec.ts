import type { INestApplicationContext } from '@nestjs/common';
import { Handle, JobState, Processor, QueueService, WorkerShutdownError, type ActiveJob } from '../../../lib';
import { createTestApp } from '../helpers/app';
import { dropSchema, uniqueSchema } from '../helpers/database';
import { HandlerRuns, pause } from '../helpers/handler-runs';
import { waitForJobState } from '../helpers/jobs';
import { waitFor } from '../helpers/wait-for';

/**
 * Graceful shutdown hands an attempt back (uncounted) only once its handler has returned. A handler
 * that ignores its signal keeps running in a process that stays alive (tests, or an app that closes
 * one module): its attempt keeps its lease, no longer renewed, and is rescued once the lease lapses,
 * so no other worker reruns it while it runs.
 */
const schema = uniqueSchema('shutdown_hb');
const runs = new HandlerRuns();
const LEASE = 4000;
const SHUTDOWN_TIMEOUT = 200;

@Processor('shutdown_hb', { concurrency: 2 })
class StubbornProcessor {
  /** Its first claim ignores its signal for 2 s; a later claim returns at once. */
  @Handle('stubborn')
  async stubborn(job: ActiveJob) {
    const run = runs.start(job);
    if (job.claims === 1) await pause(2000);
    runs.end(run);
  }

  /** Honours its signal. */
  @Handle('polite')
  async polite(job: ActiveJob) {
    const run = runs.start(job);
    if (job.claims === 1) await pause(20_000, job.signal);
    runs.end(run);
  }
}

describe('graceful shutdown and handlers still running', () => {
  const apps: INestApplicationContext[] = [];
  const boot = async () => {
    const app = await createTestApp({
      schema,
      providers: [StubbornProcessor],
      queue: { worker: { lockDurationMs: LEASE, pollIntervalMs: 50, shutdownTimeoutMs: SHUTDOWN_TIMEOUT } },
    });
    apps.push(app);
    return app;
  };

  afterAll(async () => {
    for (const app of apps) await app.close();
    await dropSchema(schema);
  });

  it('never hands back an attempt whose handler is still running; a polite one is handed back at once', async () => {
    const first = await boot();
    const queue = first.get(QueueService);
    const stubborn = await queue.add('shutdown_hb', 'stubborn', {});
    const polite = await queue.add('shutdown_hb', 'polite', {});
    await waitFor('both to start', () => runs.of(stubborn.id).length && runs.of(polite.id).length);
    const second = await boot();
    const closing = Date.now();
    await first.close();
    // shutdownTimeoutMs + the abort grace (1 s) + the final write grace (3 s), with slack for load.
    expect(Date.now() - closing).toBeLessThan(SHUTDOWN_TIMEOUT + 1000 + 3000 + 1500);
    const [politeRun] = runs.of(polite.id);
    expect(politeRun.reason).toBeInstanceOf(WorkerShutdownError);

    const other = second.get(QueueService);
    const politeDone = await waitForJobState(other, polite.id, JobState.Completed, 15_000);
    expect(politeDone.attempts).toBe(1); // handed back uncounted
    const stubbornDone = await waitForJobState(other, stubborn.id, JobState.Completed, 20_000);
    expect(stubbornDone.attempts).toBe(2); // rescued after its lease lapsed: counted
    expect(stubbornDone.lastError?.name).toBe('JobLeaseExpiredError');
    expect(runs.of(stubborn.id)).toHaveLength(2);
    expect(runs.overlaps()).toEqual([]);
  });
});
