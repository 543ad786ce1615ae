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

/** A listener of some kinds only: the worker skips the events nobody takes, and says so. */
describe('job lifecycle hub, listeners of some kinds', () => {
  const typedSchema = uniqueSchema('lifecycle_typed');
  let app: INestApplicationContext;

  afterAll(async () => {
    await app?.close();
    await dropSchema(typedSchema);
  });

  it('tells a listener only its kinds; starts are not built while nobody takes them, and an outcome still carries its start', async () => {
    // NOTE: no metrics, rollups or queue events in this app: the listener below is the hub's only one.
    app = await createTestApp({ schema: typedSchema, providers: [LifeProcessor], queue: { worker: { pollIntervalMs: 50 }, stats: false } });
    const queue = app.get(QueueService);
    const hub = app.get(JobLifecycle);
    expect(hub.active).toBe(false);
    const outcomes: JobLifecycleEvent[] = [];
    const stopOutcomes = hub.subscribe((event) => outcomes.push(event), ['completed', 'failed']);
    expect([hub.active, hub.hears('active'), hub.hears('completed'), hub.hears('retrying')]).toEqual([true, false, true, false]);

    const ok = await queue.add('life', 'ok', {});
    const boom = await queue.add('life', 'boom', {});
    await waitForJobState(queue, ok.id, 'completed');
    await waitForJobState(queue, boom.id, 'failed');
    await waitFor('both outcomes to be told', () => outcomes.length === 2);
    expect(outcomes.map((e) => [e.job.id, e.type]).sort()).toEqual([[ok.id, 'completed'], [boom.id, 'failed']].sort());
    for (const e of outcomes) {
      // The start of the attempt, on this process's clock, comes with its outcome.
      const activeAt = (e as { activeAt?: number }).activeAt;
      expect(typeof activeAt).toBe('number');
      expect(activeAt!).toBeLessThanOrEqual(e.at);
    }

    // A listener of every kind hears starts again; the typed one still hears only its kinds.
    const all: JobLifecycleEvent[] = [];
    const stopAll = hub.subscribe((event) => all.push(event));
    expect(hub.hears('active')).toBe(true);
    const again = await queue.add('life', 'ok', {});
    await waitForJobState(queue, again.id, 'completed');
    await waitFor('the new job to be told', () => all.some((e) => e.job.id === again.id && e.type === 'completed'));
    expect(all.filter((e) => e.job.id === again.id).map((e) => e.type)).toEqual(['active', 'completed']);
    expect(outcomes.filter((e) => e.job.id === again.id).map((e) => e.type)).toEqual(['completed']);
    stopAll();
    stopOutcomes();
    expect([hub.active, hub.hears('active'), hub.hears('completed')]).toEqual([false, false, false]);
  });
});
