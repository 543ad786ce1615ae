import type { INestApplicationContext } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { JobState, QueueService, QueueUnavailableError, type Job, type JobOptions } from '../../lib';
import { createTestApp } from './helpers/app';
import { dropSchema, sql, uniqueSchema } from './helpers/database';
import { waitFor } from './helpers/wait-for';

// A lone add() takes one of two statements (every option at its default, or not), through a lean
// submittable of its own; with a manager, through the user's transaction. Each must return exactly
// the job the database holds, and a statement error must leave the connection usable.
const schema = uniqueSchema('addone');
const table = `"${schema}"."queue_jobs"`;

/** The job as `getJob` reads it, for comparison with what add() returned. */
function comparable(job: Job | null) {
  return job && { ...job, runAt: job.runAt.getTime(), createdAt: job.createdAt?.getTime() };
}

describe('add() of one job', () => {
  let app: INestApplicationContext;
  let queue: QueueService;

  beforeAll(async () => {
    // Producer only: nothing claims the jobs while they are compared.
    app = await createTestApp({ schema, queue: { worker: false } });
    queue = app.get(QueueService);
  });

  afterAll(async () => {
    await app?.close();
    await dropSchema(schema);
  });

  const cases: [string, JobOptions][] = [
    ['no options', {}],
    ['priority', { priority: -7 }],
    ['delayMs', { delayMs: 60_000 }],
    ['runAt', { runAt: new Date(Date.now() + 3_600_123) }],
    ['runAt in the past', { runAt: new Date('2020-02-29T12:34:56.789Z') }],
    ['run options', { maxAttempts: 5, backoff: { type: 'exponential', delayMs: 250, maxDelayMs: 9_000 }, timeoutMs: 1_500 }],
  ];

  it.each(cases)('returns the job the database holds (%s)', async (_, options) => {
    const before = Date.now();
    const job = await queue.add('mail', 'send', { to: 'a@example.com', n: [1, 2.5, null] }, options);
    expect(comparable(job)).toEqual(comparable(await queue.getJob(job.id)));
    expect(job).toMatchObject({ queue: 'mail', name: 'send', state: JobState.Pending, attempts: 0, data: { to: 'a@example.com', n: [1, 2.5, null] } });
    expect(job.priority).toBe(options.priority ?? 0);
    if (options.runAt) expect(job.runAt).toEqual(options.runAt);
    else expect(job.runAt.getTime()).toBe(job.createdAt!.getTime() + (options.delayMs ?? 0));
    // The database's clock and this process's are the same machine's here.
    expect(job.createdAt!.getTime()).toBeGreaterThanOrEqual(before - 1_000);
  });

  it('returns the stored job in a user transaction too, with and without options', async () => {
    const dataSource = app.get(DataSource);
    const [plain, delayed] = await dataSource.transaction(async (manager) => [
      await queue.add('mail', 'send', { in: 'tx' }, { manager }),
      await queue.add('mail', 'send', { in: 'tx' }, { manager, delayMs: 5_000, priority: 3 }),
    ]);
    expect(comparable(plain)).toEqual(comparable(await queue.getJob(plain.id)));
    expect(comparable(delayed)).toEqual(comparable(await queue.getJob(delayed.id)));
    expect(delayed.runAt.getTime() - delayed.createdAt!.getTime()).toBe(5_000);
  });

  it('a statement the database refuses rejects with its error, and the next add() on the same connections works', async () => {
    await sql(`ALTER TABLE ${table} ADD CONSTRAINT no_refused CHECK (name <> 'refused')`);
    try {
      // Refused again and again (both statements), each time on the connection the next one uses.
      for (let i = 0; i < 5; i++) {
        await expect(queue.add('mail', 'refused', { i })).rejects.toThrow(/no_refused/);
        await expect(queue.add('mail', 'refused', { i }, { priority: 1 })).rejects.toThrow(/no_refused/);
      }
      const ok = await queue.add('mail', 'accepted', { after: 'refusals' });
      expect((await queue.getJob(ok.id))?.name).toBe('accepted');
      const refused = await sql<{ n: number }>(`SELECT count(*)::int AS n FROM ${table} WHERE name = 'refused'`);
      expect(refused[0].n).toBe(0);
    } finally {
      await sql(`ALTER TABLE ${table} DROP CONSTRAINT no_refused`);
    }
  });

  it('a connection lost while an add() is in flight rejects it as QueueUnavailableError, and the next add() gets a live one', async () => {
    // A trigger holds the insert of a job named 'slow', so its connection can be killed mid-statement.
    await sql(`CREATE FUNCTION "${schema}".hold() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN IF NEW.name = 'slow' THEN PERFORM pg_sleep(30); END IF; RETURN NEW; END $$`);
    await sql(`CREATE TRIGGER hold BEFORE INSERT ON ${table} FOR EACH ROW EXECUTE FUNCTION "${schema}".hold()`);
    try {
      for (const options of [{}, { priority: 2 }]) {
        const slow = queue.add('mail', 'slow', { options }, options);
        const holder = () => sql<{ pid: number }>(`SELECT pid FROM pg_stat_activity WHERE wait_event = 'PgSleep' AND query LIKE $1`, [`%${schema}%`]);
        await waitFor('the insert to be held', async () => (await holder()).length === 1);
        const [{ pid }] = await holder();
        await sql('SELECT pg_terminate_backend($1)', [pid]);
        await expect(slow).rejects.toBeInstanceOf(QueueUnavailableError);
        const next = await queue.add('mail', 'after-loss', { options }, options);
        expect((await queue.getJob(next.id))?.name).toBe('after-loss');
      }
      expect((await sql<{ n: number }>(`SELECT count(*)::int AS n FROM ${table} WHERE name = 'slow'`))[0].n).toBe(0);
    } finally {
      await sql(`DROP TRIGGER hold ON ${table}`);
    }
  });

  it('concurrent adds while one is in flight are grouped, and each gets its own job', async () => {
    const adds = Array.from({ length: 50 }, (_, i) => queue.add('mail', 'burst', { i }, i % 2 ? { priority: i } : {}));
    const jobs = await Promise.all(adds);
    expect(new Set(jobs.map((j) => j.id)).size).toBe(50);
    for (const [i, job] of jobs.entries()) {
      expect(job.data).toEqual({ i });
      expect(comparable(job)).toEqual(comparable(await queue.getJob(job.id)));
    }
  });
});
