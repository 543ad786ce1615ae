import type { INestApplicationContext } from '@nestjs/common';
import { Handle, JobState, Processor, QueueService, type ActiveJob } from '../../lib';
import { createTestApp } from './helpers/app';
import { dropSchema, uniqueSchema } from './helpers/database';
import { waitForJobState } from './helpers/jobs';
import { CapturingLogger } from './helpers/log-capture';
import { waitFor } from './helpers/wait-for';

/** Failed attempts are logged through Nest's Logger, so the app's logger decides what to do. */
const schema = uniqueSchema('faillog');

@Processor('faillog')
class FailingProcessor {
  @Handle('boom')
  boom(job: ActiveJob) {
    throw new Error(`boom of job ${job.id}`);
  }
}

describe('failure logs', () => {
  let app: INestApplicationContext;
  const logger = new CapturingLogger();

  beforeAll(async () => {
    app = await createTestApp({ schema, providers: [FailingProcessor], logger, queue: { worker: { pollIntervalMs: 50 } } });
  });

  afterAll(async () => {
    await app?.close();
    await dropSchema(schema);
  });

  it('a failed attempt with attempts left logs a warning; the final failure an error; each names the job', async () => {
    const queue = app.get(QueueService);
    const job = await queue.add('faillog', 'boom', {}, { maxAttempts: 2, backoff: { type: 'fixed', delayMs: 10 } });
    await waitForJobState(queue, job.id, JobState.Failed);
    const named = (attempt: string) => new RegExp(`job ${job.id} \\(queue "faillog", name "boom"\\).*attempt ${attempt}.*boom of job ${job.id}`, 'i');
    const warning = await waitFor('the warning', () => logger.find('warn', named('1/2'))[0]);
    expect(warning.context).toBe('QueueWorker');
    const error = await waitFor('the error', () => logger.find('error', named('2/2'))[0]);
    expect(error.context).toBe('QueueWorker');
    expect(logger.find('error', named('1/2'))).toEqual([]);
  });
});
