import type { INestApplicationContext } from '@nestjs/common';
import { Handle, InvalidJobFilterError, JobCancelledError, JobState, Processor, QueueService, type ActiveJob, type BulkActionProgress, type Job } from '../../lib';
import { createTestApp } from './helpers/app';
import { dropSchema, sql, uniqueSchema } from './helpers/database';
import { waitForJobState } from './helpers/jobs';
import { waitFor } from './helpers/wait-for';

const schema = uniqueSchema('jadmin_bulk');
const T = `"${schema}".queue_jobs`;
const NO_POLL = 60_000;

/** Why each `held` run ended, by job id. */
const aborted = new Map<string, unknown>();
const started = new Set<string>();

@Processor('bulk-active', { concurrency: 10 })
class HeldProcessor {
  /** Runs until its signal aborts (at most 20 s). */
  @Handle()
  async held(job: ActiveJob) {
    started.add(job.id);
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, 20_000);
      job.signal.addEventListener('abort', () => {
        aborted.set(job.id, job.signal.reason);
        clearTimeout(timer);
        resolve();
      });
    });
  }
}

/** The attempts each `bulk-run` job started with (0 after a retry resets the budget). */
const runAttempts = new Map<string, number>();

@Processor('bulk-run', { concurrency: 10 })
class RunProcessor {
  @Handle()
  run(job: ActiveJob) {
    runAttempts.set(job.id, job.attempts);
  }
}

describe('bulk actions: retryJobs, cancelJobs, deleteJobs, promoteJobs', () => {
  const apps: INestApplicationContext[] = [];
  let queue: QueueService;

  /** Adds `count` jobs to `queueName` and makes them failed (as a worker would), in one statement. */
  const failed = async (queueName: string, count: number, extra: Record<string, unknown> = {}): Promise<Job[]> => {
    const jobs = await queue.addBulk(Array.from({ length: count }, (_, i) => ({ queue: queueName, name: 'x', data: { i, ...extra } })));
    await sql(
      `UPDATE ${T} SET state = 'failed', attempts = 3, claims = 3, finished_at = now(),
         last_error = '{"name":"Error","message":"boom","attempt":3,"at":"2026-01-01T00:00:00Z"}' WHERE id = ANY($1::bigint[])`,
      [jobs.map((j) => j.id)],
    );
    return jobs;
  };
  const states = async (jobs: Job[]) =>
    (await sql<{ state: string }>(`SELECT state FROM ${T} WHERE id = ANY($1::bigint[]) ORDER BY id`, [jobs.map((j) => j.id)])).map((r) => r.state);

  beforeAll(async () => {
    const producer = await createTestApp({ schema, queue: { worker: false } });
    apps.push(producer);
    queue = producer.get(QueueService);
  });
  afterAll(async () => {
    for (const app of apps.reverse()) await app.close();
    await dropSchema(schema);
  });

  it('retryJobs by filter works in batches, one transaction each, and revives only failed and cancelled jobs', async () => {
    const dead = await failed('bulk-retry', 10);
    const bystander = await queue.add('bulk-retry', 'x', { pending: true });
    const progress: BulkActionProgress[] = [];
    const retried = await queue.retryJobs({ queue: 'bulk-retry' }, { batchSize: 3, onProgress: (p) => progress.push(p) });
    expect(retried).toBe(10);
    expect(progress).toEqual([
      { affected: 3, examined: 3, batches: 1 },
      { affected: 6, examined: 6, batches: 2 },
      { affected: 9, examined: 9, batches: 3 },
      { affected: 10, examined: 10, batches: 4 },
    ]);
    expect(await states(dead)).toEqual(Array(10).fill('pending'));
    const rows = await sql<{ xmin: string; attempts: number; finished_at: Date | null }>(`SELECT xmin::text, attempts, finished_at FROM ${T} WHERE id = ANY($1::bigint[])`, [dead.map((j) => j.id)]);
    // Four batches, four transactions.
    expect(new Set(rows.map((r) => r.xmin)).size).toBe(4);
    expect(rows.every((r) => r.attempts === 0 && r.finished_at === null)).toBe(true);
    expect((await queue.getJob(bystander.id))?.state).toBe(JobState.Pending);
    // Nothing left to retry.
    expect(await queue.retryJobs({ queue: 'bulk-retry' })).toBe(0);
  });

  it('retried jobs are run at once by a worker that is woken (no poll)', async () => {
    const worker = await createTestApp({ schema, providers: [RunProcessor], queue: { worker: { pollIntervalMs: NO_POLL } } });
    apps.push(worker);
    const dead = await failed('bulk-run', 5);
    expect(await queue.retryJobs({ ids: dead.map((j) => j.id) }, { batchSize: 2 })).toBe(5);
    for (const job of dead) await waitForJobState(queue, job.id, JobState.Completed, 10_000);
    // A fresh budget: the retried run is attempt 1.
    expect(dead.map((j) => runAttempts.get(j.id))).toEqual(Array(5).fill(1));
  });

  it('by ids: counts only the jobs the action applies to, each once', async () => {
    const dead = await failed('bulk-ids', 3);
    const pending = await queue.add('bulk-ids', 'x', {});
    const ids = [dead[0].id, dead[1].id, dead[1].id, pending.id, '987654321'];
    expect(await queue.retryJobs({ ids }, { batchSize: 2 })).toBe(2);
    expect(await states(dead)).toEqual(['pending', 'pending', 'failed']);
    expect(await queue.retryJobs({ ids: [] })).toBe(0);
  });

  it('filters by state, name, data and error text; a filter whose states the action never applies to does nothing', async () => {
    const a = await failed('bulk-filter', 4, { tenant: 'a' });
    const b = await failed('bulk-filter', 4, { tenant: 'b' });
    expect(await queue.retryJobs({ queue: 'bulk-filter', state: JobState.Completed })).toBe(0);
    expect(await queue.retryJobs({ queue: 'bulk-filter', data: { tenant: 'b' } }, { batchSize: 3 })).toBe(4);
    expect(await states(a)).toEqual(Array(4).fill('failed'));
    expect(await states(b)).toEqual(Array(4).fill('pending'));
    expect(await queue.retryJobs({ queue: 'bulk-filter', search: 'BOOM', state: [JobState.Failed, JobState.Completed] })).toBe(4);
    expect(await queue.deleteJobs({ queue: 'bulk-filter', name: 'other' })).toBe(0);
    expect(await queue.deleteJobs({ queue: 'bulk-filter', name: 'x' }, { batchSize: 5 })).toBe(8);
    expect(await queue.listJobs({ queue: 'bulk-filter' })).toMatchObject({ jobs: [], next: null });
  });

  it('cancelJobs cancels pending and active jobs; the handlers of active ones are aborted with JobCancelledError', async () => {
    const worker = await createTestApp({ schema, providers: [HeldProcessor], queue: { worker: { pollIntervalMs: NO_POLL } } });
    apps.push(worker);
    const running = await Promise.all([1, 2, 3].map((i) => queue.add('bulk-active', 'held', { i })));
    await waitFor('three handlers to run', () => running.every((j) => started.has(j.id)), 10_000);
    const waiting = await queue.add('bulk-active', 'held', {}, { delayMs: 3_600_000 });
    expect(await queue.cancelJobs({ queue: 'bulk-active' }, { batchSize: 2 })).toBe(4);
    await waitFor('the three handlers to be aborted', () => running.every((j) => aborted.has(j.id)), 10_000);
    for (const job of running) expect(aborted.get(job.id)).toBeInstanceOf(JobCancelledError);
    expect(await states([...running, waiting])).toEqual(Array(4).fill('cancelled'));
    // Their outcomes are discarded: they stay cancelled.
    expect(await queue.cancelJobs({ queue: 'bulk-active' })).toBe(0);
    expect(await states(running)).toEqual(Array(3).fill('cancelled'));
  });

  it('deleteJobs never deletes active jobs', async () => {
    const keep = await queue.add('bulk-active', 'held', { keep: true });
    await waitFor('the held job to run', () => started.has(keep.id), 10_000);
    const gone = await failed('bulk-active', 2);
    expect(await queue.deleteJobs({ queue: 'bulk-active' })).toBe(2 + 4);
    expect((await queue.getJob(keep.id))?.state).toBe(JobState.Active);
    expect(await queue.getJob(gone[0].id)).toBeNull();
    await queue.cancel(keep.id);
  });

  it('promoteJobs makes delayed pending jobs due now, and counts only those', async () => {
    const delayed = await Promise.all([1, 2, 3].map((i) => queue.add('bulk-promote', 'x', { i }, { delayMs: 3_600_000 })));
    const due = await queue.add('bulk-promote', 'x', {});
    expect(await queue.promoteJobs({ queue: 'bulk-promote', state: JobState.Pending }, { batchSize: 2 })).toBe(3);
    const [{ n }] = await sql<{ n: number }>(`SELECT count(*)::int AS n FROM ${T} WHERE queue = 'bulk-promote' AND run_at <= now()`);
    expect(n).toBe(4);
    expect(await queue.promoteJobs({ ids: [...delayed, due].map((j) => j.id) })).toBe(0);
  });

  it('a bulk retry leaves alone the jobs whose unique key another job holds, and retries the rest', async () => {
    const holder = await queue.add('bulk-unique', 'x', {}, { unique: { key: 'held' } });
    const [twinA, twinB] = await Promise.all([1, 2].map(() => queue.add('bulk-unique', 'x', {}, { unique: { key: 'twin' } })));
    // Two jobs of one key that both failed (the second was added after the first had finished).
    await sql(`UPDATE ${T} SET state = 'failed', finished_at = now() WHERE id = $1`, [twinA.id]);
    const twin2 = await queue.add('bulk-unique', 'x', {}, { unique: { key: 'twin' } });
    expect(twin2.duplicate).toBe(false);
    expect(twinB.id).toBe(twinA.id);
    await sql(`UPDATE ${T} SET state = 'failed', finished_at = now() WHERE id = $1`, [twin2.id]);
    const loser = await queue.add('bulk-unique', 'x', {}, { delayMs: 1 });
    await sql(`UPDATE ${T} SET state = 'failed', finished_at = now(), unique_key = 'held', unique_hold = 'finish' WHERE id = $1`, [loser.id]);
    const plain = await failed('bulk-unique', 3);
    expect(await queue.retryJobs({ queue: 'bulk-unique' }, { batchSize: 100 })).toBe(3 + 1);
    expect((await queue.getJob(loser.id))?.state).toBe(JobState.Failed);
    expect((await queue.getJob(holder.id))?.state).toBe(JobState.Pending);
    expect([(await queue.getJob(twinA.id))?.state, (await queue.getJob(twin2.id))?.state].sort()).toEqual(['failed', 'pending']);
    expect(await states(plain)).toEqual(Array(3).fill('pending'));
  });

  it('stops between batches when its signal aborts; a throwing progress callback does not stop it', async () => {
    await failed('bulk-abort', 9);
    const controller = new AbortController();
    const retried = await queue.retryJobs({ queue: 'bulk-abort' }, { batchSize: 2, signal: controller.signal, onProgress: () => controller.abort() });
    expect(retried).toBe(2);
    expect(await queue.retryJobs({ queue: 'bulk-abort' }, { batchSize: 2, pace: 0, onProgress: () => { throw new Error('display broke'); } })).toBe(7);
    // An abort during the pause after a batch ends the action at once (pace 100: a pause of 100 batches' time).
    await failed('bulk-abort', 3);
    const slow = new AbortController();
    const paced = queue.retryJobs({ queue: 'bulk-abort', state: JobState.Failed }, { batchSize: 1, pace: 100, signal: slow.signal, onProgress: () => setTimeout(() => slow.abort(), 20) });
    expect(await paced).toBe(1);
  });

  it('refuses malformed selections and options with InvalidJobFilterError; an empty filter must be { all: true }', async () => {
    const bad: [unknown, unknown, RegExp][] = [
      [{}, undefined, /selection.*all: true/],
      [{ queue: undefined }, undefined, /selection/],
      [null, undefined, /selection/],
      [{ ids: 'x' }, undefined, /ids/],
      [{ ids: ['1', 'x'] }, undefined, /ids\[1\]/],
      [{ ids: ['1'], queue: 'q' }, undefined, /queue/],
      [{ all: 'yes' }, undefined, /all/],
      [{ state: 'nope' }, undefined, /state/],
      [{ stat: 'failed' }, undefined, /did you mean state/],
      [{ queue: 'q' }, { batchSize: 0 }, /batchSize/],
      [{ queue: 'q' }, { batchSize: 10_001 }, /batchSize/],
      [{ queue: 'q' }, { onProgress: 'x' }, /onProgress/],
      [{ queue: 'q' }, { signal: {} }, /signal/],
      [{ queue: 'q' }, { size: 1 }, /size/],
      [{ queue: 'q' }, { pace: -1 }, /pace/],
      [{ queue: 'q' }, { pace: '1' }, /pace/],
      [{ queue: 'q' }, { pace: Number.NaN }, /pace/],
    ];
    for (const [selection, options, message] of bad) {
      const attempt = queue.deleteJobs(selection as never, options as never);
      await expect(attempt).rejects.toBeInstanceOf(InvalidJobFilterError);
      await expect(attempt).rejects.toThrow(message);
    }
    // Every job of the table: the only delayed ones are these two.
    await Promise.all([1, 2].map(() => queue.add('bulk-all', 'x', {}, { delayMs: 3_600_000 })));
    expect(await queue.promoteJobs({ all: true }, { batchSize: 7 })).toBe(2);
  });
});
