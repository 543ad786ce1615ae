import type { INestApplicationContext } from '@nestjs/common';
import { Handle, JobState, Processor, QueueService, type ActiveJob } from '../../lib';
import { createTestApp } from './helpers/app';
import { dropSchema, uniqueSchema } from './helpers/database';
import { waitForJobState } from './helpers/jobs';
import { CapturingLogger } from './helpers/log-capture';

// In a split deployment (an API that only enqueues, workers elsewhere), run options left unset on a
// job are fixed where it is first claimed: the producer's module defaults for them do not apply, and
// the producer says so at boot; its default priority does apply.
const schema = uniqueSchema('split');

@Processor('split')
class SplitProcessor {
  @Handle()
  run(job: ActiveJob) {
    return { maxAttempts: job.maxAttempts, timeoutMs: job.timeoutMs };
  }
}

describe('module defaults in a split deployment', () => {
  const apps: INestApplicationContext[] = [];
  afterAll(async () => {
    for (const app of apps) await app.close();
    await dropSchema(schema);
  });

  it("a worker: false process warns that its run defaults do not apply; the claiming worker's do; its priority does", async () => {
    const logger = new CapturingLogger();
    const producer = await createTestApp({
      schema,
      logger,
      queue: { worker: false, defaultJobOptions: { maxAttempts: 7, timeoutMs: 9000, priority: 4 } },
    });
    apps.push(producer);
    const [warning] = logger.find('warn', /no effect with worker: false/);
    expect(warning?.message).toContain('defaultJobOptions.maxAttempts, defaultJobOptions.timeoutMs have no effect');
    expect(warning?.context).toBe('QueueWorker');

    apps.push(await createTestApp({ schema, providers: [SplitProcessor], queue: { defaultJobOptions: { maxAttempts: 2 }, worker: { pollIntervalMs: 50 } } }));
    const queue = producer.get(QueueService);
    const job = await queue.add('split', 'x', {});
    expect(job.priority).toBe(4);
    const done = await waitForJobState(queue, job.id, JobState.Completed);
    expect(done.result).toEqual({ maxAttempts: 2, timeoutMs: null });
  });

  it('a producer without run defaults says nothing', async () => {
    const logger = new CapturingLogger();
    apps.push(await createTestApp({ schema, logger, queue: { worker: false, defaultJobOptions: { priority: 1 } } }));
    expect(logger.find('warn', /no effect/)).toEqual([]);
  });
});
