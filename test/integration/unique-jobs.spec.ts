import type { INestApplicationContext } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { Handle, InvalidJobOptionError, JobState, Processor, QueueService, UniqueKeyHeldError, type ActiveJob } from '../../lib';
import { createTestApp } from './helpers/app';
import { Client } from 'pg';
import { DATABASE_URL, dropSchema, sql, uniqueSchema } from './helpers/database';
import { waitForJobState } from './helpers/jobs';
import { waitFor } from './helpers/wait-for';

const schema = uniqueSchema('uniq');
const table = `"${schema}".queue_jobs`;

/** Handlers that wait for the test to let them finish: `release(id)`. */
const gates = new Map<string, () => void>();
const release = (id: string) => waitFor(`job ${id} to be running`, () => gates.get(id)).then((open) => open());

@Processor('uniq', { concurrency: 5 })
class UniqueProcessor {
  @Handle('gated')
  gated(job: ActiveJob<{ v: number }>) {
    return new Promise((resolve) => gates.set(job.id, () => resolve({ v: job.data.v })));
  }

  @Handle('quick')
  quick(job: ActiveJob<{ v: number }>) {
    return { v: job.data.v };
  }
}

describe('unique jobs', () => {
  let producer: INestApplicationContext;
  let worker: INestApplicationContext | undefined;
  let queue: QueueService;
  const startWorker = async () => {
    worker = await createTestApp({ schema, providers: [UniqueProcessor], queue: { worker: { pollIntervalMs: 50 } } });
  };

  beforeAll(async () => {
    producer = await createTestApp({ schema, queue: { worker: false } });
    queue = producer.get(QueueService);
  });
  afterEach(async () => {
    for (const open of gates.values()) open();
    gates.clear();
    await worker?.close();
    worker = undefined;
    await sql(`DELETE FROM ${table}`);
  });
  afterAll(async () => {
    await producer?.close();
    await dropSchema(schema);
  });

  it("until 'finish' (default): the holder is returned while unfinished, a new job once it is done", async () => {
    const first = await queue.add('uniq', 'gated', { v: 1 }, { unique: { key: 'k' } });
    expect(first).toMatchObject({ duplicate: false, uniqueKey: 'k', state: 'pending' });
    const again = await queue.add('uniq', 'gated', { v: 2 }, { unique: { key: 'k' } });
    expect(again).toMatchObject({ id: first.id, duplicate: true, data: { v: 1 } });
    // Other queues and other keys are independent.
    expect((await queue.add('other', 'gated', {}, { unique: { key: 'k' } })).duplicate).toBe(false);
    expect((await queue.add('uniq', 'gated', {}, { unique: { key: 'k2' } })).duplicate).toBe(false);

    await startWorker();
    await waitForJobState(queue, first.id, JobState.Active);
    expect(await queue.add('uniq', 'gated', { v: 3 }, { unique: { key: 'k' } })).toMatchObject({ id: first.id, duplicate: true, state: 'active' });
    await release(first.id);
    await waitForJobState(queue, first.id, JobState.Completed);
    const next = await queue.add('uniq', 'gated', { v: 4 }, { unique: { key: 'k' } });
    expect(next).toMatchObject({ duplicate: false, data: { v: 4 } });
    expect(next.id).not.toBe(first.id);
  });

  it("until 'start': a new job may be added once the holder runs", async () => {
    const first = await queue.add('uniq', 'gated', { v: 1 }, { unique: { key: 's', until: 'start' } });
    expect((await queue.add('uniq', 'gated', { v: 2 }, { unique: { key: 's', until: 'start' } })).id).toBe(first.id);
    await startWorker();
    await waitForJobState(queue, first.id, JobState.Active);
    const second = await queue.add('uniq', 'gated', { v: 3 }, { unique: { key: 's', until: 'start' } });
    expect(second.duplicate).toBe(false);
    expect(second.id).not.toBe(first.id);
  });

  it('replace (debounce): a pending holder takes the new data, priority and run time; a running one is returned (finish) or followed (start)', async () => {
    const runAt = new Date(Date.now() + 60_000);
    const first = await queue.add('uniq', 'gated', { v: 1 }, { unique: { key: 'd', replace: true }, runAt });
    const replaced = await queue.add('uniq', 'gated', { v: 2 }, { unique: { key: 'd', replace: true }, delayMs: 0, priority: 5 });
    expect(replaced).toMatchObject({ id: first.id, duplicate: true, data: { v: 2 }, priority: 5 });
    expect(replaced.runAt.getTime()).toBeLessThan(runAt.getTime());
    expect((await queue.getJob(first.id))?.data).toEqual({ v: 2 });

    await startWorker();
    await waitForJobState(queue, first.id, JobState.Active);
    const whileRunning = await queue.add('uniq', 'gated', { v: 3 }, { unique: { key: 'd', replace: true } });
    expect(whileRunning).toMatchObject({ id: first.id, duplicate: true, data: { v: 2 } });
    const started = await queue.add('uniq', 'gated', { v: 4 }, { unique: { key: 'd2', until: 'start', replace: true } });
    await waitForJobState(queue, started.id, JobState.Active);
    const follower = await queue.add('uniq', 'gated', { v: 5 }, { unique: { key: 'd2', until: 'start', replace: true } });
    expect(follower).toMatchObject({ duplicate: false, data: { v: 5 } });
  });

  it('windowMs (throttle): one job per window whatever became of the first', async () => {
    await startWorker();
    // A window long enough that the whole test falls in one or two of them.
    const windowMs = 2_000;
    const options = { unique: { key: 't', windowMs } };
    let first = await queue.add('uniq', 'quick', { v: 1 }, options);
    // Start right after a window boundary, so the checks below stay inside one window.
    if (Date.now() % windowMs > windowMs / 2) {
      await waitFor('the next window', () => Date.now() % windowMs < 200, 5_000, 10);
      first = await queue.add('uniq', 'quick', { v: 1 }, options);
    }
    await waitForJobState(queue, first.id, JobState.Completed);
    const again = await queue.add('uniq', 'quick', { v: 2 }, options);
    expect(again).toMatchObject({ id: first.id, duplicate: true, state: 'completed' });
    await waitFor('the next window', () => Math.floor(Date.now() / windowMs) > Math.floor(first.createdAt.getTime() / windowMs), 5_000, 10);
    const next = await queue.add('uniq', 'quick', { v: 3 }, options);
    expect(next.duplicate).toBe(false);
  });

  it('addBulk: duplicates within the batch and against the table, in input order; the last wins with replace', async () => {
    const holder = await queue.add('uniq', 'gated', { v: 0 }, { unique: { key: 'held' } });
    const jobs = await queue.addBulk([
      { queue: 'uniq', name: 'gated', data: { v: 1 }, options: { unique: { key: 'a' } } },
      { queue: 'uniq', name: 'gated', data: { v: 2 }, options: { unique: { key: 'a' } } },
      { queue: 'uniq', name: 'gated', data: { v: 3 } },
      { queue: 'uniq', name: 'gated', data: { v: 4 }, options: { unique: { key: 'held' } } },
      { queue: 'uniq', name: 'gated', data: { v: 5 }, options: { unique: { key: 'b', replace: true } } },
      { queue: 'uniq', name: 'gated', data: { v: 6 }, options: { unique: { key: 'b', replace: true } } },
      { queue: 'uniq', name: 'gated', data: { v: 7 } },
    ]);
    expect(jobs.map((j) => j.duplicate)).toEqual([false, true, undefined, true, true, false, undefined]);
    expect(jobs[1].id).toBe(jobs[0].id);
    expect(jobs[1].data).toEqual({ v: 1 });
    expect(jobs[3].id).toBe(holder.id);
    expect(jobs[4].id).toBe(jobs[5].id);
    expect(jobs[5].data).toEqual({ v: 6 });
    expect(jobs.map((j) => j.data)).toEqual([{ v: 1 }, { v: 1 }, { v: 3 }, { v: 0 }, { v: 6 }, { v: 6 }, { v: 7 }]);
    const [{ n }] = await sql<{ n: number }>(`SELECT count(*)::int AS n FROM ${table}`);
    expect(n).toBe(5); // held, a, v3, b, v7
    // Ids of new jobs keep input order.
    expect(Number(jobs[2].id)).toBeGreaterThan(Number(jobs[0].id));
    expect(Number(jobs[6].id)).toBeGreaterThan(Number(jobs[5].id));
  });

  it('a large addBulk (the COPY path): keys with tabs, line breaks and backslashes, duplicates in the batch and in the table', async () => {
    const held = await queue.add('uniq', 'gated', { v: -1 }, { unique: { key: 'line\nbreak' } });
    const keys = ['tab\there', 'line\nbreak', 'back\\slash', 'cr\rhere', 'plain'];
    const input = Array.from({ length: 200 }, (_, i) => ({
      queue: 'uniq',
      name: 'gated',
      data: { v: i },
      options: i % 10 === 0 ? undefined : { unique: { key: i < keys.length + 1 ? keys[i - 1] : `k${i % 50}` } },
    }));
    const jobs = await queue.addBulk(input);
    const stored = await sql<{ id: string; unique_key: string | null }>(`SELECT id::text, unique_key FROM ${table} ORDER BY id`);
    // The held key was not added again; every other key once; plain jobs all.
    const expectedKeys = new Set(input.filter((j) => j.options).map((j) => j.options!.unique.key));
    expect(stored.filter((r) => r.unique_key !== null).map((r) => r.unique_key).sort()).toEqual([...expectedKeys].sort());
    expect(stored.filter((r) => r.unique_key === null)).toHaveLength(20);
    expect(jobs[2]).toMatchObject({ id: held.id, duplicate: true, data: { v: -1 } });
    for (const key of keys) expect(stored.some((r) => r.unique_key === key)).toBe(true);
    // In-batch duplicates of k<n>: the first wins, the later ones return it.
    const byKey = new Map<string, string>();
    jobs.forEach((job, i) => {
      const key = input[i].options?.unique.key;
      if (!key || key === 'line\nbreak') return;
      if (!byKey.has(key)) {
        byKey.set(key, job.id);
        expect(job.duplicate).toBe(false);
      } else {
        expect(job).toMatchObject({ id: byKey.get(key), duplicate: true });
      }
    });
  });

  it('a large addBulk racing another transaction for a key falls back, and returns that transaction\'s job', async () => {
    // A producer of its own: the optimistic COPY is tried (another batch's conflict makes a
    // repository skip it for a while).
    const fresh = await createTestApp({ schema, queue: { worker: false } });
    const queue = fresh.get(QueueService);
    const other = new Client({ connectionString: DATABASE_URL });
    await other.connect();
    try {
      await other.query('BEGIN');
      const [{ id }] = (await other.query(`INSERT INTO ${table} (queue, name, unique_key, unique_hold) VALUES ('uniq', 'gated', 'raced', 'finish') RETURNING id::text`)).rows;
      const bulk = queue.addBulk(Array.from({ length: 100 }, (_, i) => ({ queue: 'uniq', name: 'gated', data: { i }, options: { unique: { key: i === 50 ? 'raced' : `r${i}` } } })));
      // The COPY waits on the other transaction's key, then fails on it once that commits.
      await waitFor('the bulk insert to wait for the other transaction', async () => (await sql(`SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%COPY%'`)).length > 0);
      await other.query('COMMIT');
      const jobs = await bulk;
      expect(jobs[50]).toMatchObject({ id, duplicate: true });
      const [{ n }] = await sql<{ n: number }>(`SELECT count(*)::int AS n FROM ${table} WHERE unique_key LIKE 'r%' OR unique_key = 'raced'`);
      expect(n).toBe(100);
      // The conflict sends the next batches by statements: they still dedupe against the table.
      const again = await queue.addBulk(Array.from({ length: 100 }, (_, i) => ({ queue: 'uniq', name: 'gated', data: { i }, options: { unique: { key: `r${i}` } } })));
      expect(again.filter((j) => j.duplicate)).toHaveLength(99);
      expect(again[50].duplicate).toBe(false);
    } finally {
      await other.end();
      await fresh.close();
    }
  });

  it('addBulk with throttle windows and delays (the statement path): one job per key and window', async () => {
    const first = await queue.add('uniq', 'gated', { v: 0 }, { unique: { key: 'w1', windowMs: 3_600_000 } });
    const jobs = await queue.addBulk([
      { queue: 'uniq', name: 'gated', data: { v: 1 }, options: { unique: { key: 'w1', windowMs: 3_600_000 } } },
      { queue: 'uniq', name: 'gated', data: { v: 2 }, options: { unique: { key: 'w2', windowMs: 3_600_000 }, delayMs: 1000 } },
      { queue: 'uniq', name: 'gated', data: { v: 3 }, options: { unique: { key: 'w2', windowMs: 3_600_000 } } },
      { queue: 'uniq', name: 'gated', data: { v: 4 }, options: { delayMs: 1000 } },
    ]);
    expect(jobs.map((j) => j.duplicate)).toEqual([true, false, true, undefined]);
    expect(jobs[0].id).toBe(first.id);
    expect(jobs[2].id).toBe(jobs[1].id);
    expect(jobs[1].runAt.getTime()).toBeGreaterThan(Date.now() + 500);
    const [{ n }] = await sql<{ n: number }>(`SELECT count(*)::int AS n FROM ${table}`);
    expect(n).toBe(3);
  });

  it('in a user transaction: the key is taken at commit, and nothing at rollback', async () => {
    const dataSource = producer.get(DataSource);
    await expect(
      dataSource.transaction(async (manager) => {
        const job = await queue.add('uniq', 'gated', { v: 1 }, { unique: { key: 'tx' }, manager });
        expect(job.duplicate).toBe(false);
        throw new Error('roll back');
      }),
    ).rejects.toThrow('roll back');
    const committed = await dataSource.transaction((manager) => queue.add('uniq', 'gated', { v: 2 }, { unique: { key: 'tx' }, manager }));
    expect(committed.duplicate).toBe(false);
    expect((await queue.add('uniq', 'gated', { v: 3 }, { unique: { key: 'tx' } })).id).toBe(committed.id);
  });

  it.each([
    ['an empty key', { key: '' }, 'unique.key'],
    ['a non-string key', { key: 42 }, 'unique.key'],
    ['an over-long key', { key: 'k'.repeat(513) }, 'unique.key'],
    ['a key with a lone surrogate', { key: 'a\ud800' }, 'unique.key'],
    ['no key', { replace: true }, 'unique.key'],
    ['an unknown until', { key: 'k', until: 'end' }, 'unique.until'],
    ['a zero window', { key: 'k', windowMs: 0 }, 'unique.windowMs'],
    ['a fractional window', { key: 'k', windowMs: 1.5 }, 'unique.windowMs'],
    ['a NaN window', { key: 'k', windowMs: NaN }, 'unique.windowMs'],
    ['until with a window', { key: 'k', windowMs: 10, until: 'start' }, 'unique.until'],
    ['a non-boolean replace', { key: 'k', replace: 'yes' }, 'unique.replace'],
    ['an unknown key', { key: 'k', ttl: 5 }, 'unique.ttl'],
  ])('refuses %s, storing nothing', async (_what, unique, option) => {
    const error = await queue.add('uniq', 'gated', {}, { unique } as never).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InvalidJobOptionError);
    expect((error as InvalidJobOptionError).option).toBe(option);
    const [{ n }] = await sql<{ n: number }>(`SELECT count(*)::int AS n FROM ${table}`);
    expect(n).toBe(0);
  });
});

describe('unique jobs and retry()', () => {
  let app: INestApplicationContext;
  let queue: QueueService;
  const retrySchema = uniqueSchema('uniqretry');

  beforeAll(async () => {
    app = await createTestApp({ schema: retrySchema, queue: { worker: false } });
    queue = app.get(QueueService);
  });
  afterAll(async () => {
    await app?.close();
    await dropSchema(retrySchema);
  });

  it('refuses to retry a job whose key another job holds now, naming the holder; retries it once the key is free', async () => {
    const first = await queue.add('uniq', 'n', {}, { unique: { key: 'r' } });
    await queue.cancel(first.id);
    const second = await queue.add('uniq', 'n', {}, { unique: { key: 'r' } });
    expect(second.duplicate).toBe(false);
    const error = await queue.retry(first.id).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UniqueKeyHeldError);
    expect(error).toMatchObject({ jobId: first.id, key: 'r', holderId: second.id });
    expect((await queue.getJob(first.id))?.state).toBe('cancelled');
    await queue.cancel(second.id);
    expect((await queue.retry(first.id)).state).toBe('pending');
  });
});
