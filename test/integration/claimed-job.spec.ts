import type { INestApplicationContext } from '@nestjs/common';
import { Handle, JobState, Processor, QueueService, type ActiveJob, type Job } from '../../lib';
import { createTestApp } from './helpers/app';
import { dropSchema, sql, uniqueSchema } from './helpers/database';
import { waitForJobState } from './helpers/jobs';

// A claim sends back only what differs between its jobs and the worker fills in the rest (queue,
// lease end, the processor's defaults): what a handler sees must still be the stored job.
const schema = uniqueSchema('claimed');
const LOCK_MS = 45_000;
const seen = new Map<string, Job>();
/** locked_until as the database held it while the handler ran. */
const leaseInDatabase = new Map<string, number>();
/** The backoff objects handlers were given: each job its own, as when it came from its row. */
const backoffObjects = new Set<object>();

@Processor('claimed', { concurrency: 20, defaultJobOptions: { maxAttempts: 7, backoff: { type: 'fixed', delayMs: 250 }, timeoutMs: 9_000 } })
class CapturingProcessor {
  @Handle()
  async capture(job: ActiveJob) {
    // A plain copy of what the handler was given (the view itself also carries signal/transaction).
    seen.set(job.id, { ...job, backoff: job.backoff && { ...job.backoff } });
    if (job.backoff) backoffObjects.add(job.backoff);
    const [row] = await sql<{ ms: number }>(
      `SELECT floor(extract(epoch FROM locked_until) * 1000)::float8 AS ms FROM "${schema}".queue_jobs WHERE id = $1`,
      [job.id],
    );
    leaseInDatabase.set(job.id, row.ms);
  }
}

describe('the job a handler receives', () => {
  let app: INestApplicationContext;
  let queue: QueueService;

  beforeAll(async () => {
    app = await createTestApp({ schema, providers: [CapturingProcessor], queue: { worker: { pollIntervalMs: 50, lockDurationMs: LOCK_MS } } });
    queue = app.get(QueueService);
  });

  afterAll(async () => {
    await app?.close();
    await dropSchema(schema);
  });

  it('is the stored job, with the processor defaults where the job set none', async () => {
    const plain = await queue.add('claimed', 'plain', { a: 1 });
    const custom = await queue.add('claimed', 'custom', { b: [2] }, {
      maxAttempts: 2,
      backoff: { type: 'exponential', delayMs: 5, maxDelayMs: 50, jitter: 0.25 },
      timeoutMs: 1_234,
      priority: 3,
    });
    const equalToDefaults = await queue.add('claimed', 'same', {}, { maxAttempts: 7, timeoutMs: 9_000 });
    for (const job of [plain, custom, equalToDefaults]) await waitForJobState(queue, job.id, JobState.Completed);

    for (const [job, expected] of [
      [plain, { maxAttempts: 7, backoff: { type: 'fixed', delayMs: 250 }, timeoutMs: 9_000, priority: 0 }],
      [custom, { maxAttempts: 2, backoff: { type: 'exponential', delayMs: 5, maxDelayMs: 50, jitter: 0.25 }, timeoutMs: 1_234, priority: 3 }],
      [equalToDefaults, { maxAttempts: 7, backoff: { type: 'fixed', delayMs: 250 }, timeoutMs: 9_000, priority: 0 }],
    ] as const) {
      const given = seen.get(job.id)!;
      const stored = (await queue.getJob(job.id))!;
      expect(given).toMatchObject({ ...expected, id: job.id, queue: 'claimed', name: job.name, data: job.data, state: JobState.Active, attempts: 1, claims: 1 });
      // The stored job (now completed) has the same options, times and identity.
      expect(stored).toMatchObject({ ...expected, attempts: 1, claims: 1 });
      expect(given.runAt.getTime()).toBe(stored.runAt.getTime());
      expect(given.createdAt.getTime()).toBe(stored.createdAt.getTime());
      expect(given.startedAt!.getTime()).toBe(stored.startedAt!.getTime());
      // The lease end it saw is the one the database held while it ran (no heartbeat in between).
      expect(given.lockedUntil!.getTime()).toBe(stored.startedAt!.getTime() + LOCK_MS);
      expect(given.lockedUntil!.getTime()).toBe(leaseInDatabase.get(job.id));
      expect(given.lockedBy).toEqual(expect.any(String));
    }
    expect(backoffObjects.size).toBe(3);
    for (const backoff of backoffObjects) expect(Object.isFrozen(backoff)).toBe(false);
  });
});
