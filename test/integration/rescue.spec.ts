import type { INestApplicationContext } from '@nestjs/common';
import { Handle, Job, JobState, Processor, QueueService } from '../../lib';
import { createTestApp } from './helpers/app';
import { dropSchema, sql, uniqueSchema } from './helpers/database';
import { waitForJobState } from './helpers/jobs';

const schema = uniqueSchema('rescue');
const started = new Map<string, number>();

@Processor('rescue')
class RescueProcessor {
  @Handle('work')
  work(job: Job) {
    started.set(job.id, Date.now());
  }
}

describe('rescue of a dead worker\'s job', () => {
  let producer: INestApplicationContext;
  let worker: INestApplicationContext | undefined;

  beforeAll(async () => {
    producer = await createTestApp({ schema, queue: { worker: false } });
  });

  afterAll(async () => {
    await worker?.close();
    await producer?.close();
    await dropSchema(schema);
  });

  it('reruns it after its lease lapses, within about 1.5 lease lengths of the last renewal', async () => {
    const LEASE = 1000;
    const queue = producer.get(QueueService);
    const job = await queue.add('rescue', 'work', {});
    // A worker that claimed the job, renewed its lease just now, and died.
    const [{ renewed }] = await sql<{ renewed: Date }>(
      `UPDATE "${schema}".queue_jobs SET state = 'active', attempts = 1, claims = 1, max_attempts = 3, locked_by = 'dead-worker',
         started_at = now(), locked_until = now() + $2 * interval '1 millisecond' WHERE id = $1 RETURNING now() AS renewed`,
      [job.id, LEASE],
    );
    worker = await createTestApp({ schema, providers: [RescueProcessor], queue: { worker: { lockDurationMs: LEASE, pollIntervalMs: 50 } } });
    const done = await waitForJobState(queue, job.id, JobState.Completed, 10_000);
    const delay = started.get(job.id)! - renewed.getTime();
    expect(delay).toBeGreaterThanOrEqual(LEASE); // not before the lease lapsed
    expect(delay).toBeLessThan(1.5 * LEASE + 1500); // rescue runs every half lease; generous slack for a loaded machine
    expect(done.attempts).toBe(2);
    expect(done.lastError?.message).toMatch(/lease of worker dead-worker lapsed/);
  });
});
