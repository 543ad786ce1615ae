import type { INestApplicationContext } from '@nestjs/common';
import { Handle, Processor, QueueService, type ActiveJob } from '../../lib';
import { JobLifecycle, type JobLifecycleEvent } from '../../lib/worker/job-lifecycle';
import { createTestApp } from './helpers/app';
import { dropSchema, uniqueSchema } from './helpers/database';
import { waitForJobState } from './helpers/jobs';
import { waitFor } from './helpers/wait-for';

const schema = uniqueSchema('lifecycle');

@Processor('life', { concurrency: 4, defaultJobOptions: { maxAttempts: 2, backoff: { type: 'fixed', delayMs: 10 } } })
class LifeProcessor {
  @Handle('ok')
  ok() {
    return { fine: true };
  }

  @Handle('boom')
  boom() {
    throw new Error('always');
  }

  @Handle('nap')
  nap(job: ActiveJob) {
    return job.attempts === 1 && job.claims === 1 ? job.snooze(10) : 'woke';
  }
}

/** The internal hub that public events and metrics build on: told after the database confirmed. */
describe('job lifecycle hub', () => {
  let app: INestApplicationContext;
  let queue: QueueService;
  const events: JobLifecycleEvent[] = [];

  beforeAll(async () => {
    app = await createTestApp({ schema, providers: [LifeProcessor], queue: { worker: { pollIntervalMs: 50 } } });
    queue = app.get(QueueService);
    const hub = app.get(JobLifecycle);
    hub.subscribe(() => {
      throw new Error('a broken listener');
    });
    hub.subscribe((event) => events.push(event));
  });
  afterAll(async () => {
    await app?.close();
    await dropSchema(schema);
  });

  const of = (id: string) => events.filter((e) => e.job.id === id).map((e) => e.type);

  it('tells active, then the written outcome, in order, past a listener that throws', async () => {
    const ok = await queue.add('life', 'ok', {});
    const boom = await queue.add('life', 'boom', {});
    const nap = await queue.add('life', 'nap', {});
    await waitForJobState(queue, ok.id, 'completed');
    await waitForJobState(queue, boom.id, 'failed');
    await waitForJobState(queue, nap.id, 'completed');
    await waitFor('the outcomes to be told', () => of(boom.id).includes('failed') && of(nap.id).includes('completed') && of(ok.id).includes('completed'));
    expect(of(ok.id)).toEqual(['active', 'completed']);
    expect(of(boom.id)).toEqual(['active', 'retrying', 'active', 'failed']);
    expect(of(nap.id)).toEqual(['active', 'requeued', 'active', 'completed']);
    const done = events.find((e) => e.job.id === ok.id && e.type === 'completed');
    expect(done).toMatchObject({ result: '{"fine":true}' });
    const requeued = events.find((e) => e.job.id === nap.id && e.type === 'requeued');
    expect(requeued).toMatchObject({ reason: 'snooze', delayMs: 10 });
  });
});
