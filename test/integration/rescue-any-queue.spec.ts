import type { INestApplicationContext } from '@nestjs/common';
import { Handle, Processor, QueueService } from '../../lib';
import { createTestApp } from './helpers/app';
import { dropSchema, sql, uniqueSchema } from './helpers/database';
import { waitFor } from './helpers/wait-for';

/**
 * A lapsed lease is a lapsed lease: any worker's rescuer puts it back, including in a queue no
 * process runs any more (its processor was removed or renamed). Back to pending, never failed for
 * lack of a handler.
 */
const schema = uniqueSchema('rescueall');

@Processor('still-here')
class StillHereProcessor {
  @Handle()
  any() {
    return 'ok';
  }
}

describe('the rescuer covers every queue', () => {
  let app: INestApplicationContext;

  afterAll(async () => {
    await app?.close();
    await dropSchema(schema);
  });

  it('puts back a lapsed job of a queue that no process runs', async () => {
    app = await createTestApp({ schema, providers: [StillHereProcessor], queue: { worker: { lockDurationMs: 1000, pollIntervalMs: 50 } } });
    const queue = app.get(QueueService);
    const job = await queue.add('removed-queue', 'orphan', {});
    await sql(
      `UPDATE "${schema}".queue_jobs SET state = 'active', attempts = 1, claims = 1, max_attempts = 3, locked_by = 'gone-worker',
         started_at = now(), locked_until = now() - interval '1 second' WHERE id = $1`,
      [job.id],
    );
    const rescued = await waitFor('the orphan to be rescued', async () => {
      const j = await queue.getJob(job.id);
      return j?.state === 'pending' ? j : undefined;
    }, 10_000);
    expect(rescued.attempts).toBe(1);
    expect(rescued.lockedBy).toBeNull();
    expect(rescued.lastError?.name).toBe('JobLeaseExpiredError');
  });
});
