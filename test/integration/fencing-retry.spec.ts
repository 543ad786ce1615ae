import type { INestApplicationContext } from '@nestjs/common';
import { ActiveJob, Handle, JobState, Processor, QueueService } from '../../lib';
import { createTestApp } from './helpers/app';
import { dropSchema, uniqueSchema } from './helpers/database';
import { waitForJobState } from './helpers/jobs';
import { waitFor } from './helpers/wait-for';

const schema = uniqueSchema('fence');

// NOTE: the fence itself (a stale run's write refused by the database) is exercised by
// chaos/fencing.spec.ts with a frozen process; here, that a worker never runs two claims of one job
// at once.

/** Each run of the handler parks until the test releases it, then returns its own label. */
const parked: { job: ActiveJob; release: () => void; abortedAtReturn?: boolean }[] = [];

@Processor('fence', { concurrency: 2 })
class ParkingProcessor {
  @Handle('park')
  async park(job: ActiveJob) {
    const entry = { job, release: () => undefined as void } as (typeof parked)[number];
    const released = new Promise<void>((resolve) => (entry.release = resolve));
    parked.push(entry);
    await released; // deliberately ignores job.signal
    entry.abortedAtReturn = job.signal.aborted;
    return `claim ${job.claims}`;
  }
}

describe('fencing survives cancel + retry + re-claim by the same worker', () => {
  let app: INestApplicationContext;
  let queue: QueueService;

  beforeAll(async () => {
    // No LISTEN and a long lease: a cancellation reaches a running handler only through the
    // heartbeat, once a second, which leaves a window for the same worker to re-claim the job.
    app = await createTestApp({ schema, providers: [ParkingProcessor], queue: { worker: { listen: false, pollIntervalMs: 20, lockDurationMs: 60_000 } } });
    queue = app.get(QueueService);
  });

  afterAll(async () => {
    parked.forEach((p) => p.release());
    await app?.close();
    await dropSchema(schema);
  });

  it('a stale run of an earlier claim is aborted, the newer claim of the same attempt number waits for it, and only the newer one completes', async () => {
    const job = await queue.add('fence', 'park', {});
    await waitFor('first run parked', () => parked.length === 1);
    await queue.cancel(job.id);
    const revived = await queue.retry(job.id);
    expect(revived.attempts).toBe(0);
    // The same worker claims the job again: the database gave it a newer claim, so the older run's
    // lease is surely gone. It is aborted, and the newer claim does not start its handler while the
    // older one (which ignores its signal) still runs.
    await waitFor('the re-claim', async () => (await queue.getJob(job.id))?.claims === 2);
    const [first] = parked;
    await waitFor('the stale run to be aborted', () => first.job.signal.aborted);
    expect(parked).toHaveLength(1);

    first.release();
    await waitFor('first run returned', () => first.abortedAtReturn !== undefined);
    const [, second] = await waitFor('second run parked', () => (parked.length === 2 ? parked : undefined));
    // Same job, same worker, same attempt number: only the claim tells them apart.
    expect(first.job.attempts).toBe(1);
    expect(second.job.attempts).toBe(1);
    expect(second.job.lockedBy).toBe(first.job.lockedBy);
    expect(second.job.claims).toBe(first.job.claims + 1);
    // The stale run's result was not stored.
    expect((await queue.getJob(job.id))?.state).toBe(JobState.Active);

    second.release();
    const done = await waitForJobState(queue, job.id, JobState.Completed);
    expect(done.result).toBe(`claim ${second.job.claims}`);
  });
});
