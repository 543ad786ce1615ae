import type { INestApplicationContext } from '@nestjs/common';
import { Handle, InvalidJobDataError, InvalidJobOptionError, Processor, QueueService, type ActiveJob } from '../../lib';
import { JobLifecycle } from '../../lib/worker/job-lifecycle';
import { GlobalEventDemand } from '../../lib/events/global-event-demand';
import { createTestApp } from './helpers/app';
import { dropSchema, sql, uniqueSchema } from './helpers/database';
import { waitForJobState } from './helpers/jobs';
import { waitFor } from './helpers/wait-for';

const schema = uniqueSchema('progress');

/** What the handlers saw, by job id. */
const seen = new Map<string, unknown>();
const gates = new Map<string, (value: unknown) => void>();

@Processor('prog', { concurrency: 2 })
class ProgressProcessor {
  /** 1,000 calls in a tight loop, none awaited but the last. */
  @Handle('burst')
  async burst(job: ActiveJob) {
    let last: Promise<boolean> = Promise.resolve(false);
    for (let i = 1; i <= 1000; i++) last = job.progress(i / 10);
    seen.set(job.id, await last);
  }

  @Handle('object')
  async object(job: ActiveJob) {
    seen.set(job.id, await job.progress({ step: 'upload', done: 3, of: 7 }));
  }

  /** Reports, is cancelled, then reports again: the second write must be fenced out. */
  @Handle('fenced')
  async fenced(job: ActiveJob) {
    await job.progress(10);
    await new Promise((resolve) => job.signal.addEventListener('abort', resolve, { once: true }));
    seen.set(job.id, await job.progress(77));
  }

  /** Reports, then waits for the test to open its gate, then reports again. */
  @Handle('stale')
  async stale(job: ActiveJob) {
    await job.progress(20);
    await new Promise((resolve) => gates.set(job.id, resolve));
    seen.set(job.id, await job.progress(88));
  }

  @Handle('bad')
  bad(job: ActiveJob) {
    const errors: string[] = [];
    for (const value of [101, -1, Number.NaN, Infinity, 'half', [1, 2], null, { big: 'x'.repeat(2000) }, { n: 10n }]) {
      try {
        void job.progress(value as never);
        errors.push('accepted');
      } catch (error) {
        errors.push(error instanceof InvalidJobOptionError ? `${error.option}` : error instanceof InvalidJobDataError ? `data: ${error.message}` : `other: ${error}`);
      }
    }
    seen.set(job.id, errors);
  }
}

describe('job.progress()', () => {
  let app: INestApplicationContext;
  let queue: QueueService;

  beforeAll(async () => {
    app = await createTestApp({ schema, providers: [ProgressProcessor], queue: { worker: { pollIntervalMs: 50 }, stats: false } });
    queue = app.get(QueueService);
    // NOTE: counts the progress writes the database actually receives, row by row.
    await sql(`CREATE TABLE "${schema}".progress_writes (job_id bigint NOT NULL, value jsonb)`);
    await sql(`CREATE FUNCTION "${schema}".count_progress() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN INSERT INTO "${schema}".progress_writes VALUES (NEW.id, NEW.progress); RETURN NEW; END $$`);
    await sql(`CREATE TRIGGER count_progress AFTER UPDATE OF progress ON "${schema}".queue_jobs FOR EACH ROW EXECUTE FUNCTION "${schema}".count_progress()`);
  });
  afterAll(async () => {
    await app?.close();
    await dropSchema(schema);
  });

  const writes = async (id: string) => (await sql<{ value: unknown }>(`SELECT value FROM "${schema}".progress_writes WHERE job_id = $1`, [id])).map((r) => r.value);

  it('coalesces 1,000 calls in a tight loop into a bounded number of writes, the last value stored', async () => {
    const job = await queue.add('prog', 'burst', {});
    await waitForJobState(queue, job.id, 'completed');
    expect(seen.get(job.id)).toBe(true);
    const written = await writes(job.id);
    // One write in flight and the latest value behind it: the first call's, then the last's.
    expect(written.length).toBeGreaterThanOrEqual(1);
    expect(written.length).toBeLessThanOrEqual(3);
    expect(written[written.length - 1]).toBe(100);
    expect((await queue.getJob(job.id))!.progress).toBe(100);
  });

  it('stores a small JSON object', async () => {
    const job = await queue.add('prog', 'object', {});
    await waitForJobState(queue, job.id, 'completed');
    expect(seen.get(job.id)).toBe(true);
    expect((await queue.getJob(job.id))!.progress).toEqual({ step: 'upload', done: 3, of: 7 });
  });

  it('is fenced: once the attempt lost the job (cancelled), a progress write is refused and resolves false', async () => {
    const job = await queue.add('prog', 'fenced', {});
    await waitFor('the first progress', async () => (await queue.getJob(job.id))?.progress === 10);
    await queue.cancel(job.id);
    await waitFor('the handler to report again', () => seen.has(job.id));
    expect(seen.get(job.id)).toBe(false);
    const stored = await queue.getJob(job.id);
    expect(stored).toMatchObject({ state: 'cancelled', progress: 10 });
    expect(await writes(job.id)).toEqual([10]);
  });

  it('is fenced on the claim: once a newer claim of the job exists (even by this worker), the old attempt writes nothing', async () => {
    const job = await queue.add('prog', 'stale', {});
    await waitFor('the first progress', async () => (await queue.getJob(job.id))?.progress === 20);
    await waitFor('the handler to wait', () => gates.has(job.id));
    // As if the lease lapsed, the job was rescued and this same worker claimed it again: only the
    // claim number tells the two attempts apart.
    await sql(`UPDATE "${schema}".queue_jobs SET claims = claims + 1, attempts = attempts + 1 WHERE id = $1`, [job.id]);
    gates.get(job.id)!(undefined);
    await waitFor('the handler to report again', () => seen.has(job.id));
    expect(seen.get(job.id)).toBe(false);
    expect((await queue.getJob(job.id))!.progress).toBe(20);
    expect(await writes(job.id)).toEqual([20]);
    await queue.cancel(job.id);
  });

  it('refuses anything but a number from 0 to 100 or a small JSON object, with a typed error naming progress', async () => {
    const job = await queue.add('prog', 'bad', {});
    await waitForJobState(queue, job.id, 'completed');
    expect(seen.get(job.id)).toEqual([...Array(8).fill('progress'), expect.stringMatching(/^data: progress\.n is a BigInt/)]);
    expect(await writes(job.id)).toEqual([]);
    expect((await queue.getJob(job.id))!.progress).toBeNull();
  });

  it('costs the worker nothing when nobody listens to events: the lifecycle hub has no listener', async () => {
    // NOTE: no @OnQueueEvent here, no process listening globally and no rollups (`stats: false`;
    // they are on by default and listen to the hub): neither the local relay nor the global
    // publisher subscribed, so the executor builds no event (the hub's `active` check).
    await app.get(GlobalEventDemand).refresh();
    expect(app.get(GlobalEventDemand).any).toBe(false);
    expect(app.get(JobLifecycle).active).toBe(false);
  });
});
