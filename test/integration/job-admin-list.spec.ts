import type { INestApplicationContext } from '@nestjs/common';
import { Client } from 'pg';
import { AdminQueryTimeoutError, InvalidJobFilterError, JobState, QueueDatabaseError, QueueService, type Job, type JobPage, type ListJobsOptions } from '../../lib';
import { createTestApp } from './helpers/app';
import { DATABASE_URL, dropSchema, sql, uniqueSchema } from './helpers/database';

const schema = uniqueSchema('jadmin_list');
const T = `"${schema}".queue_jobs`;

/** Every page of a listing, following `next`; fails on a repeated job. */
async function allPages(queue: QueueService, options: ListJobsOptions): Promise<{ ids: string[]; pages: JobPage[] }> {
  const pages: JobPage[] = [];
  let after: string | undefined = options.after;
  for (let guard = 0; guard < 1000; guard++) {
    const page = await queue.listJobs({ ...options, after });
    pages.push(page);
    if (!page.next) break;
    after = page.next;
  }
  const ids = pages.flatMap((p) => p.jobs.map((j) => j.id));
  expect(new Set(ids).size).toBe(ids.length);
  return { ids, pages };
}

const byIdDesc = (a: string, b: string) => Number(b) - Number(a);

describe('listJobs: keyset pages, filters, search', () => {
  let app: INestApplicationContext;
  let queue: QueueService;

  beforeAll(async () => {
    app = await createTestApp({ schema, queue: { worker: false } });
    queue = app.get(QueueService);
  });
  afterAll(async () => {
    await app.close();
    await dropSchema(schema);
  });

  it('pages newest and oldest first over jobs added in one transaction (the same created_at), every job once', async () => {
    const added = await queue.addBulk(Array.from({ length: 80 }, (_, i) => ({ queue: 'ties', name: 'x', data: { i } })));
    const [{ n }] = await sql<{ n: number }>(`SELECT count(DISTINCT created_at)::int AS n FROM ${T} WHERE queue = 'ties'`);
    expect(n).toBe(1);
    const ids = added.map((j) => j.id);
    const newest = await allPages(queue, { queue: 'ties', limit: 7 });
    expect(newest.ids).toEqual([...ids].sort(byIdDesc));
    expect(newest.pages).toHaveLength(Math.ceil(80 / 7));
    expect(newest.pages.at(-1)!.next).toBeNull();
    const oldest = await allPages(queue, { queue: 'ties', limit: 9, sort: 'oldest' });
    expect(oldest.ids).toEqual([...ids].sort(byIdDesc).reverse());
    // A page of exactly the remaining jobs says there is no next one.
    const exact = await queue.listJobs({ queue: 'ties', limit: 80 });
    expect(exact.jobs).toHaveLength(80);
    expect(exact.next).toBeNull();
    expect(exact.jobs[0]).toMatchObject({ queue: 'ties', name: 'x', state: JobState.Pending, data: { i: 79 } });
  });

  it('a cursor stays put while jobs are added: newest-first pages continue where they were, oldest-first ones reach the new jobs', async () => {
    const first = await queue.addBulk(Array.from({ length: 10 }, (_, i) => ({ queue: 'moving', name: 'x', data: { i } })));
    const page1 = await queue.listJobs({ queue: 'moving', limit: 4 });
    const oldest1 = await queue.listJobs({ queue: 'moving', limit: 4, sort: 'oldest' });
    const later = await queue.addBulk(Array.from({ length: 5 }, (_, i) => ({ queue: 'moving', name: 'x', data: { late: i } })));
    const rest = await allPages(queue, { queue: 'moving', limit: 4, after: page1.next! });
    expect([...page1.jobs.map((j) => j.id), ...rest.ids]).toEqual(first.map((j) => j.id).sort(byIdDesc));
    const oldestRest = await allPages(queue, { queue: 'moving', limit: 4, sort: 'oldest', after: oldest1.next! });
    expect([...oldest1.jobs.map((j) => j.id), ...oldestRest.ids]).toEqual([...first, ...later].map((j) => j.id));
  });

  it('a cursor stays put while jobs are deleted, finish or change: the next page neither repeats nor skips a job still there', async () => {
    const jobs = await queue.addBulk(Array.from({ length: 12 }, (_, i) => ({ queue: 'churn', name: 'x', data: { i } })));
    const ids = jobs.map((j) => j.id).sort(byIdDesc);
    const page1 = await queue.listJobs({ queue: 'churn', limit: 5 });
    expect(page1.jobs.map((j) => j.id)).toEqual(ids.slice(0, 5));
    // The last job of page 1 (the cursor's) and one of page 2 are deleted; another one finishes.
    await queue.deleteJob(ids[4]);
    await queue.deleteJob(ids[6]);
    await sql(`UPDATE ${T} SET state = 'completed', finished_at = now() WHERE id = $1`, [ids[7]]);
    const rest = await allPages(queue, { queue: 'churn', limit: 5, after: page1.next! });
    expect(rest.ids).toEqual(ids.slice(5).filter((id) => id !== ids[6]));
  });

  it('lastFinished pages by finish time, ties (one batch finishing at once) in id order', async () => {
    const jobs = await queue.addBulk(Array.from({ length: 12 }, (_, i) => ({ queue: 'finished', name: 'x', data: { i } })));
    const ids = jobs.map((j) => j.id);
    // Ten finish at the same instant, two later; one is still pending.
    await sql(`UPDATE ${T} SET state = 'completed', finished_at = '2026-01-01T00:00:00.123456Z' WHERE id = ANY($1::bigint[])`, [ids.slice(0, 10)]);
    await sql(`UPDATE ${T} SET state = 'failed', finished_at = '2026-01-01T00:00:01.000001Z' WHERE id = $1`, [ids[10]]);
    const listed = await allPages(queue, { queue: 'finished', sort: 'lastFinished', limit: 3 });
    expect(listed.ids).toEqual([ids[10], ...ids.slice(0, 10).sort(byIdDesc)]);
    const failedOnly = await queue.listJobs({ queue: 'finished', sort: 'lastFinished', state: JobState.Failed });
    expect(failedOnly.jobs.map((j) => j.id)).toEqual([ids[10]]);
    await expect(queue.listJobs({ sort: 'lastFinished', state: JobState.Pending })).rejects.toThrow(InvalidJobFilterError);
  });

  it('nextToRun pages a queue\'s pending jobs in claim order (priority, run time, id), across equal priorities and run times', async () => {
    const at = new Date('2030-01-01T00:00:00.000Z');
    const spec = [0, 5, 0, 5, 1, 0, 5, 1];
    const jobs: Job[] = [];
    for (const priority of spec) jobs.push(await queue.add('claim-order', 'x', { priority }, { priority, runAt: at }));
    const earlier = await queue.add('claim-order', 'x', {}, { priority: 1, runAt: new Date('2029-01-01T00:00:00.000Z') });
    const expected = [...jobs, earlier]
      .sort((a, b) => b.priority - a.priority || a.runAt.getTime() - b.runAt.getTime() || Number(a.id) - Number(b.id))
      .map((j) => j.id);
    const listed = await allPages(queue, { queue: 'claim-order', sort: 'nextToRun', limit: 2 });
    expect(listed.ids).toEqual(expected);
    await expect(queue.listJobs({ sort: 'nextToRun' })).rejects.toThrow(/queue/);
    await expect(queue.listJobs({ queue: 'claim-order', sort: 'nextToRun', state: JobState.Failed })).rejects.toThrow(InvalidJobFilterError);
  });

  it('filters by queue, state (one or several) and name', async () => {
    const [a, b, c] = await queue.addBulk([
      { queue: 'filters', name: 'send', data: {} },
      { queue: 'filters', name: 'send', data: {} },
      { queue: 'filters', name: 'other', data: {} },
    ]);
    await sql(`UPDATE ${T} SET state = 'failed', finished_at = now() WHERE id = $1`, [a.id]);
    await sql(`UPDATE ${T} SET state = 'cancelled', finished_at = now() WHERE id = $1`, [c.id]);
    const ids = async (options: ListJobsOptions) => (await queue.listJobs({ queue: 'filters', ...options })).jobs.map((j) => j.id);
    expect(await ids({ state: JobState.Failed })).toEqual([a.id]);
    expect(await ids({ state: [JobState.Failed, JobState.Cancelled] })).toEqual([c.id, a.id]);
    expect(await ids({ name: 'send' })).toEqual([b.id, a.id]);
    expect(await ids({ name: 'send', state: JobState.Pending })).toEqual([b.id]);
    expect(await ids({ state: JobState.Active })).toEqual([]);
  });

  it('data matches a deep partial by containment (@>), arrays by their elements', async () => {
    const [u1, u2, u3] = await queue.addBulk([
      { queue: 'data', name: 'x', data: { user: { id: 1, name: 'ann' }, tags: ['a', 'b'], n: 1 } },
      { queue: 'data', name: 'x', data: { user: { id: 2, name: 'bob' }, tags: ['b'] } },
      { queue: 'data', name: 'x', data: { user: { id: 1 }, tags: [] } },
    ]);
    const ids = async (data: Record<string, unknown>) => (await queue.listJobs({ queue: 'data', data })).jobs.map((j) => j.id);
    expect(await ids({ user: { id: 1 } })).toEqual([u3.id, u1.id]);
    expect(await ids({ tags: ['b'] })).toEqual([u2.id, u1.id]);
    expect(await ids({ user: { id: 1, name: 'ann' }, tags: ['a'] })).toEqual([u1.id]);
    expect(await ids({ user: { id: '1' } })).toEqual([]);
    expect(await ids({ nothing: null })).toEqual([]);
    // Across queues too, and combined with a sort.
    expect((await queue.listJobs({ data: { user: { name: 'bob' } }, sort: 'oldest' })).jobs.map((j) => j.id)).toEqual([u2.id]);
  });

  it('search finds a job by id, or by text in its last error (wildcards taken literally)', async () => {
    const [a, b, c] = await queue.addBulk([
      { queue: 'search', name: 'x', data: {} },
      { queue: 'search', name: 'x', data: {} },
      { queue: 'search', name: 'x', data: {} },
    ]);
    const error = (name: string, message: string) => JSON.stringify({ name, message, attempt: 1, at: new Date().toISOString() });
    await sql(`UPDATE ${T} SET state = 'failed', finished_at = now(), last_error = $2::jsonb WHERE id = $1`, [a.id, error('TypeError', 'Upstream said 50% off')]);
    await sql(`UPDATE ${T} SET state = 'failed', finished_at = now(), last_error = $2::jsonb WHERE id = $1`, [b.id, error('TimeoutError', 'upstream timed out after 500 ms')]);
    const ids = async (search: string, options: ListJobsOptions = {}) => (await queue.listJobs({ search, ...options })).jobs.map((j) => j.id);
    expect(await ids(c.id)).toEqual([c.id]);
    expect(await ids(` ${b.id} `)).toEqual([b.id]);
    expect(await ids(c.id, { state: JobState.Failed })).toEqual([]);
    expect(await ids('UPSTREAM', { queue: 'search' })).toEqual([b.id, a.id]);
    expect(await ids('50%', { queue: 'search' })).toEqual([a.id]);
    expect(await ids('5_0', { queue: 'search' })).toEqual([]);
    expect(await ids('timeouterror')).toEqual([b.id]);
    expect(await ids('9223372036854775807')).toEqual([]);
  });

  it('a text search or data filter examines at most scanLimit jobs per page, and its cursor continues after the last one examined', async () => {
    const jobs = await queue.addBulk(Array.from({ length: 20 }, (_, i) => ({ queue: 'scan', name: 'x', data: { hit: i === 2 || i === 15 } })));
    const first = await queue.listJobs({ queue: 'scan', data: { hit: true }, scanLimit: 4, limit: 10 });
    // Newest first: the 4 newest jobs hold no match.
    expect(first).toMatchObject({ jobs: [], scanLimited: true });
    expect(first.next).not.toBeNull();
    const all = await allPages(queue, { queue: 'scan', data: { hit: true }, scanLimit: 4, limit: 10 });
    expect(all.ids).toEqual([jobs[15].id, jobs[2].id]);
    expect(all.pages.length).toBeGreaterThanOrEqual(5);
    // A page that fills up before the scan limit is an ordinary page.
    const full = await queue.listJobs({ queue: 'scan', data: { hit: false }, scanLimit: 1000, limit: 3 });
    expect(full).toMatchObject({ scanLimited: false });
    expect(full.jobs.map((j) => j.id)).toEqual([jobs[19].id, jobs[18].id, jobs[17].id]);
    const fullRest = await allPages(queue, { queue: 'scan', data: { hit: false }, scanLimit: 1000, limit: 3, after: full.next! });
    expect(fullRest.ids).toHaveLength(15);
  });

  it('odd but valid input is data, never SQL: quotes, backslashes, LIKE escapes and emoji in names, search and data', async () => {
    const odd = `q'"\\; DROP TABLE x; --`;
    const [a] = await queue.addBulk([{ queue: odd, name: "n'ame", data: { "k'ey": 'va\\lue "x"', emoji: '😀', nested: { $: ['%', '_'] } } }]);
    await sql(`UPDATE ${T} SET state = 'failed', finished_at = now(), last_error = $2::jsonb WHERE id = $1`, [
      a.id,
      JSON.stringify({ name: 'Error', message: `bad \\ path 'x' 100% _done_ 😀`, attempt: 1, at: new Date().toISOString() }),
    ]);
    const ids = async (options: ListJobsOptions) => (await queue.listJobs(options)).jobs.map((j) => j.id);
    expect(await ids({ queue: odd })).toEqual([a.id]);
    expect(await ids({ queue: odd, name: "n'ame", state: JobState.Failed, sort: 'lastFinished' })).toEqual([a.id]);
    expect(await ids({ data: { "k'ey": 'va\\lue "x"' } })).toEqual([a.id]);
    expect(await ids({ data: { emoji: '😀', nested: { $: ['_'] } } })).toEqual([a.id]);
    for (const text of ['\\', "'x'", '100%', '_done_', '😀', "'; SELECT 1; --"]) {
      expect(await ids({ queue: odd, search: text })).toEqual(text.startsWith("';") ? [] : [a.id]);
    }
    expect(await queue.retryJobs({ queue: odd, search: '100%' })).toBe(1);
  });

  it('refuses malformed cursors, filters and options with InvalidJobFilterError, before any SQL', async () => {
    const page = await queue.listJobs({ queue: 'ties', limit: 2 });
    const finishedPage = await queue.listJobs({ queue: 'finished', sort: 'lastFinished', limit: 2 });
    const bad: [ListJobsOptions | unknown, RegExp][] = [
      [{ after: 'not a cursor!' }, /after/],
      [{ after: '' }, /after/],
      [{ after: Buffer.from('{"x":1}').toString('base64url') }, /after/],
      [{ after: Buffer.from('["n","0"]').toString('base64url') }, /after/],
      [{ after: Buffer.from('["n","1; DROP TABLE x"]').toString('base64url') }, /after/],
      [{ after: Buffer.from('["f","abc","1"]').toString('base64url'), sort: 'lastFinished' }, /after/],
      [{ after: Buffer.from('["r",1e99,"1","1"]').toString('base64url'), sort: 'nextToRun', queue: 'q' }, /after/],
      [{ after: 'x'.repeat(500) }, /after/],
      [{ after: page.next, sort: 'oldest' }, /pages sort 'newest'/],
      [{ after: finishedPage.next }, /pages sort 'lastFinished'/],
      [{ after: 42 }, /after/],
      [{ state: 'running' }, /state/],
      [{ state: [] }, /state/],
      [{ state: ['failed', 'nope'] }, /state/],
      [{ queue: '' }, /queue/],
      [{ name: 7 }, /name/],
      [{ sort: 'random' }, /sort/],
      [{ limit: 0 }, /limit/],
      [{ limit: 1001 }, /limit/],
      [{ limit: 2.5 }, /limit/],
      [{ scanLimit: 0 }, /scanLimit/],
      [{ data: [1] }, /data/],
      [{ data: 'user.id:1' }, /data/],
      [{ data: { n: 10n } }, /data\.n/],
      [{ data: { s: 'a\u0000b' } }, /data\.s/],
      [{ search: '' }, /search/],
      [{ search: 'x'.repeat(201) }, /search/],
      [{ status: 'failed' }, /status.*did you mean state/],
      [null, /options/],
    ];
    for (const [options, message] of bad) {
      const attempt = queue.listJobs(options as ListJobsOptions);
      await expect(attempt).rejects.toBeInstanceOf(InvalidJobFilterError);
      await expect(attempt).rejects.toThrow(message);
    }
  });

  it('runs under adminQueryTimeoutMs: a query the database cancels is an AdminQueryTimeoutError', async () => {
    const impatient = await createTestApp({ schema, queue: { worker: false, adminQueryTimeoutMs: 300 } });
    const locker = new Client({ connectionString: DATABASE_URL });
    await locker.connect();
    try {
      await locker.query('BEGIN');
      await locker.query(`LOCK TABLE ${T} IN ACCESS EXCLUSIVE MODE`);
      const started = Date.now();
      const attempt = impatient.get(QueueService).listJobs({ queue: 'ties' });
      await expect(attempt).rejects.toBeInstanceOf(AdminQueryTimeoutError);
      await expect(attempt).rejects.not.toBeInstanceOf(QueueDatabaseError);
      expect(Date.now() - started).toBeLessThan(5000);
    } finally {
      await locker.query('ROLLBACK');
      await locker.end();
      await impatient.close();
    }
    // The pool is fine afterwards.
    expect((await queue.listJobs({ queue: 'ties', limit: 1 })).jobs).toHaveLength(1);
  });
});
