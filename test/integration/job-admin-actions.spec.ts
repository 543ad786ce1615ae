import type { INestApplicationContext } from '@nestjs/common';
import { Client } from 'pg';
import {
  Handle,
  InvalidJobDataError,
  InvalidJobOptionError,
  InvalidJobStateError,
  JobNotFoundError,
  JobState,
  Processor,
  QueueService,
  type ActiveJob,
} from '../../lib';
import { createTestApp } from './helpers/app';
import { DATABASE_URL, dropSchema, sql, uniqueSchema } from './helpers/database';
import { waitForJobState } from './helpers/jobs';
import { waitFor } from './helpers/wait-for';

const schema = uniqueSchema('jadmin_act');
const T = `"${schema}".queue_jobs`;
/** Long enough that a job started within the test's bounds was woken, not polled. */
const NO_POLL = 60_000;

/** The data each run of the `race` queue saw, by job id. */
const seen = new Map<string, unknown>();
let releaseHeld: (() => void) | undefined;

@Processor('acted', { concurrency: 4 })
class ActedProcessor {
  @Handle('quick')
  quick(job: ActiveJob) {
    seen.set(job.id, job.data);
    return 'done';
  }

  /** Runs until released (or aborted). */
  @Handle('held')
  async held(job: ActiveJob) {
    await new Promise<void>((resolve) => {
      releaseHeld = resolve;
      job.signal.addEventListener('abort', () => resolve());
    });
  }
}

@Processor('race', { concurrency: 8 })
class RaceProcessor {
  @Handle()
  run(job: ActiveJob) {
    seen.set(job.id, job.data);
  }
}

describe('job management API: deleteJob, promote, updateJob', () => {
  const apps: INestApplicationContext[] = [];
  let queue: QueueService;

  beforeAll(async () => {
    const producer = await createTestApp({ schema, queue: { worker: false } });
    apps.push(producer);
    queue = producer.get(QueueService);
    // The worker polls once a minute: a job it starts within seconds was woken.
    apps.push(await createTestApp({ schema, providers: [ActedProcessor], queue: { worker: { pollIntervalMs: NO_POLL } } }));
  });
  afterAll(async () => {
    releaseHeld?.();
    for (const app of apps.reverse()) await app.close();
    await dropSchema(schema);
  });

  it('deleteJob deletes a job that is not active and returns it; refuses an active one, a missing one and a bad id', async () => {
    const later = await queue.add('elsewhere', 'x', { keep: false }, { delayMs: 3_600_000 });
    const deleted = await queue.deleteJob(later.id);
    expect(deleted).toMatchObject({ id: later.id, state: JobState.Pending, data: { keep: false } });
    expect(await queue.getJob(later.id)).toBeNull();
    await expect(queue.deleteJob(later.id)).rejects.toBeInstanceOf(JobNotFoundError);

    const failed = await queue.add('elsewhere', 'x', {});
    await sql(`UPDATE ${T} SET state = 'failed', finished_at = now() WHERE id = $1`, [failed.id]);
    expect((await queue.deleteJob(failed.id)).state).toBe(JobState.Failed);

    const held = await queue.add('acted', 'held', {});
    await waitForJobState(queue, held.id, JobState.Active);
    const refused = queue.deleteJob(held.id);
    await expect(refused).rejects.toBeInstanceOf(InvalidJobStateError);
    await expect(refused).rejects.toThrow(/it is active/);
    expect((await queue.getJob(held.id))?.state).toBe(JobState.Active);
    // Cancel first, then delete.
    await queue.cancel(held.id);
    expect((await queue.deleteJob(held.id)).state).toBe(JobState.Cancelled);

    await expect(queue.deleteJob('12abc')).rejects.toBeInstanceOf(InvalidJobOptionError);
    await expect(queue.deleteJob(undefined as unknown as string)).rejects.toBeInstanceOf(InvalidJobOptionError);
  });

  it('a unique key is free once its holder is deleted', async () => {
    const holder = await queue.add('elsewhere', 'x', {}, { unique: { key: 'k1' }, delayMs: 3_600_000 });
    expect((await queue.add('elsewhere', 'x', {}, { unique: { key: 'k1' } })).duplicate).toBe(true);
    await queue.deleteJob(holder.id);
    expect((await queue.add('elsewhere', 'x', {}, { unique: { key: 'k1' } })).duplicate).toBe(false);
  });

  it('promote makes a delayed job due now and wakes its workers; refuses a job that is not pending', async () => {
    const delayed = await queue.add('acted', 'quick', { p: 1 }, { delayMs: 3_600_000 });
    const promotedAt = Date.now();
    const promoted = await queue.promote(delayed.id);
    expect(promoted.state).toBe(JobState.Pending);
    expect(promoted.runAt.getTime()).toBeLessThan(delayed.runAt.getTime());
    expect(Math.abs(promoted.runAt.getTime() - promotedAt)).toBeLessThan(5_000);
    // The worker polls once a minute: only the wake-up can start it this soon.
    await waitForJobState(queue, delayed.id, JobState.Completed, 10_000);
    const completed = queue.promote(delayed.id);
    await expect(completed).rejects.toBeInstanceOf(InvalidJobStateError);
    await expect(completed).rejects.toThrow(/it is completed; only pending jobs can be/);
    await expect(queue.promote('999999999')).rejects.toBeInstanceOf(JobNotFoundError);
  });

  it('promote of a retry-waiting job runs it now; of a due job changes nothing', async () => {
    const waiting = await queue.add('elsewhere', 'x', {});
    await sql(`UPDATE ${T} SET attempts = 1, claims = 1, run_at = now() + interval '1 hour' WHERE id = $1`, [waiting.id]);
    expect((await queue.promote(waiting.id)).runAt.getTime()).toBeLessThanOrEqual(Date.now() + 1000);
    const due = await queue.add('elsewhere', 'x', {}, { runAt: new Date(Date.now() - 60_000) });
    expect((await queue.promote(due.id)).runAt).toEqual(due.runAt);
  });

  it('updateJob changes data, priority and run time of a pending job, validated as add() validates them', async () => {
    const job = await queue.add('elsewhere', 'x', { v: 1 }, { delayMs: 3_600_000 });
    const runAt = new Date('2031-05-06T07:08:09.010Z');
    const updated = await queue.updateJob(job.id, { data: { v: 2, list: [1, 2] }, priority: 7, runAt });
    expect(updated).toMatchObject({ id: job.id, data: { v: 2, list: [1, 2] }, priority: 7, runAt, state: JobState.Pending });
    expect(await queue.getJob(job.id)).toMatchObject({ data: { v: 2, list: [1, 2] }, priority: 7, runAt });
    // Only what is given changes; data may be any JSON, null included.
    expect(await queue.updateJob(job.id, { data: null })).toMatchObject({ data: null, priority: 7, runAt });
    expect(await queue.updateJob(job.id, { priority: -3 })).toMatchObject({ data: null, priority: -3, runAt });

    const bad: [unknown, new (...args: never[]) => Error, RegExp][] = [
      [{ data: { n: 1n } }, InvalidJobDataError, /data\.n is a BigInt/],
      [{ data: { f: () => 1 } }, InvalidJobDataError, /data\.f is a function/],
      [{ data: 'x'.repeat(32 * 1024 * 1024) }, InvalidJobDataError, /bytes as JSON/],
      [{ priority: 1.5 }, InvalidJobOptionError, /priority/],
      [{ runAt: 'tomorrow' }, InvalidJobOptionError, /runAt/],
      [{ delayMs: 5 }, InvalidJobOptionError, /delayMs/],
      [{}, InvalidJobOptionError, /at least one of data, priority, runAt/],
      [null, InvalidJobOptionError, /update/],
    ];
    for (const [update, type, message] of bad) {
      const attempt = queue.updateJob(job.id, update as never);
      await expect(attempt).rejects.toBeInstanceOf(type);
      await expect(attempt).rejects.toThrow(message);
    }
    expect(await queue.getJob(job.id)).toMatchObject({ data: null, priority: -3, runAt });
    await expect(queue.updateJob('424242424', { priority: 1 })).rejects.toBeInstanceOf(JobNotFoundError);
    await sql(`UPDATE ${T} SET state = 'completed', finished_at = now() WHERE id = $1`, [job.id]);
    await expect(queue.updateJob(job.id, { priority: 1 })).rejects.toThrow(/it is completed; only pending jobs can be/);
  });

  it('updateJob is fenced against a claim: a claim holding the row wins, and the update changes nothing', async () => {
    const job = await queue.add('elsewhere', 'x', { v: 'old' });
    // A claim in flight: the row is locked and turned active by a transaction that commits later.
    const claimer = new Client({ connectionString: DATABASE_URL });
    await claimer.connect();
    try {
      await claimer.query('BEGIN');
      await claimer.query(`UPDATE ${T} SET state = 'active', attempts = 1, claims = 1, locked_by = 'w', locked_until = now() + interval '1 minute' WHERE id = $1`, [job.id]);
      const update = queue.updateJob(job.id, { data: { v: 'new' } });
      const outcome = update.then(() => 'applied', (error: Error) => error);
      // The update waits for the row.
      await waitFor('the update to wait for the row lock', async () => {
        const [row] = await sql<{ n: number }>(`SELECT count(*)::int AS n FROM pg_locks WHERE NOT granted AND locktype = 'transactionid'`);
        return row.n > 0;
      }, 10_000);
      await claimer.query('COMMIT');
      const result = await outcome;
      expect(result).toBeInstanceOf(InvalidJobStateError);
      expect(String(result)).toMatch(/it is active/);
    } finally {
      await claimer.end();
    }
    expect((await queue.getJob(job.id))?.data).toEqual({ v: 'old' });
  });

  it('updateJob racing real workers: an update that returns was seen by the handler, one refused was not', async () => {
    const worker = await createTestApp({ schema, providers: [RaceProcessor], queue: { worker: { pollIntervalMs: 20 } } });
    apps.push(worker);
    // Each job is updated 0 to 4 ms after it is added, while the worker is woken by the add.
    const raced = await Promise.all(
      Array.from({ length: 60 }, async (_, i) => {
        const job = await queue.add('race', 'x', { v: 'old', i });
        await new Promise((resolve) => setTimeout(resolve, i % 5));
        const outcome = await queue.updateJob(job.id, { data: { v: 'new', i } }).then(
          () => 'applied',
          (error: unknown) => (error instanceof InvalidJobStateError ? 'refused' : error),
        );
        return { job, outcome };
      }),
    );
    const jobs = raced.map((r) => r.job);
    const outcomes = raced.map((r) => r.outcome);
    for (const job of jobs) await waitForJobState(queue, job.id, JobState.Completed, 20_000);
    jobs.forEach((job, i) => {
      expect(['applied', 'refused']).toContain(outcomes[i]);
      expect(seen.get(job.id)).toEqual(outcomes[i] === 'applied' ? { v: 'new', i } : { v: 'old', i });
    });
  });
});
