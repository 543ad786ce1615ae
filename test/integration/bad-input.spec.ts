import type { INestApplicationContext } from '@nestjs/common';
import { InvalidJobDataError, InvalidJobOptionError, QueueService } from '../../lib';
import { createTestApp } from './helpers/app';
import { dropSchema, sql, uniqueSchema } from './helpers/database';

const schema = uniqueSchema('bad');

describe('bad input is refused with a typed error and nothing is stored', () => {
  let app: INestApplicationContext;
  let queue: QueueService;
  const stored = async () => (await sql<{ n: number }>(`SELECT count(*)::int AS n FROM "${schema}".queue_jobs`))[0].n;

  beforeAll(async () => {
    app = await createTestApp({ schema, queue: { worker: false } });
    queue = app.get(QueueService);
  });

  afterAll(async () => {
    await app?.close();
    await dropSchema(schema);
  });

  afterEach(async () => {
    expect(await stored()).toBe(0);
  });

  const circular: Record<string, unknown> = { a: 1 };
  circular.self = circular;

  it.each([
    ['a BigInt', { id: 10n }, 'data.id', /BigInt/],
    ['a top-level BigInt', 5n, 'data', /BigInt/],
    ['a circular structure', circular, 'data.self', /circular/],
    ['a function', { fn: () => 1 }, 'data.fn', /function/],
    ['a symbol', { s: Symbol('x') }, 'data.s', /symbol/],
    ['NaN', { n: NaN }, 'data.n', /NaN/],
    ['Infinity inside an array', { list: [1, Infinity] }, 'data.list[1]', /Infinity/],
    ['undefined as the whole payload', undefined, 'data', /undefined/],
    ['a Map', { m: new Map([[1, 2]]) }, 'data.m', /Map/],
    ['a NUL character', { s: 'a\u0000b' }, 'data.s', /NUL/],
    ['a NUL character in a key', { ['k\u0000']: 1 }, 'data.k\u0000', /NUL/],
    ['a lone surrogate', { list: ['fine 🎉', 'cut \ud83c'] }, 'data.list[1]', /surrogate/],
    ['a lone surrogate in a key', { ['\udc00']: 1 }, 'data.\udc00', /surrogate/],
  ])('refuses data with %s', async (_what, data, path, problem) => {
    const error = await queue.add('q', 'n', data).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InvalidJobDataError);
    expect((error as InvalidJobDataError).path).toBe(path);
    expect((error as Error).message).toMatch(problem);
  });

  it('accepts a Date (stored as its ISO string) and drops undefined properties, as JSON does', async () => {
    const job = await queue.add('q', 'n', { at: new Date(0), gone: undefined });
    expect(job.data).toEqual({ at: '1970-01-01T00:00:00.000Z' });
    await sql(`DELETE FROM "${schema}".queue_jobs`);
  });

  it('accepts any JSON value as data, including null, strings with quotes and unicode, and arrays', async () => {
    const values = [null, 0, 'say "hi" \\ \u00e9 \ud83d\ude00', [1, { a: [null] }], { nested: { 'key "x"': true } }];
    const jobs = await queue.addBulk(values.map((data) => ({ queue: 'q', name: 'n', data })));
    expect(jobs.map((j) => j.data)).toEqual(values);
    for (const [i, job] of jobs.entries()) expect((await queue.getJob(job.id))?.data).toEqual(values[i]);
    expect((await queue.add('q', 'n', null)).data).toBeNull();
    await sql(`DELETE FROM "${schema}".queue_jobs`);
  });

  it.each([
    ['an empty queue name', ['', 'n'], 'queue'],
    ['an over-long queue name', ['q'.repeat(129), 'n'], 'queue'],
    ['a non-string queue name', [42, 'n'], 'queue'],
    ['a queue name with a newline', ['a\nb', 'n'], 'queue'],
    ['an empty job name', ['q', ''], 'name'],
    ['an over-long job name', ['q', 'n'.repeat(129)], 'name'],
    ['a job name with edge spaces', ['q', ' n '], 'name'],
    ['a queue name with a lone surrogate', ['cut \ud83c', 'n'], 'queue'],
    ['a job name with a lone surrogate', ['q', '\udc00'], 'name'],
  ])('refuses %s', async (_what, [queueName, jobName], option) => {
    const error = await queue.add(queueName as string, jobName as string, {}).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InvalidJobOptionError);
    expect((error as InvalidJobOptionError).option).toBe(option);
  });

  it.each([
    ['a negative priority that is not an integer', { priority: -1.5 }, 'priority'],
    ['a NaN priority', { priority: NaN }, 'priority'],
    ['maxAttempts 0', { maxAttempts: 0 }, 'maxAttempts'],
    ['a fractional maxAttempts', { maxAttempts: 2.5 }, 'maxAttempts'],
    ['a negative delayMs', { delayMs: -1 }, 'delayMs'],
    ['a NaN delayMs', { delayMs: NaN }, 'delayMs'],
    ['an invalid runAt', { runAt: new Date('nope') }, 'runAt'],
    ['runAt that is not a Date', { runAt: '2030-01-01' }, 'runAt'],
    ['both runAt and delayMs', { runAt: new Date(), delayMs: 5 }, 'runAt/delayMs'],
    ['runAt after year 9999', { runAt: new Date('+010000-01-01T00:00:00Z') }, 'runAt'],
    ['runAt at the end of JavaScript time', { runAt: new Date(8.64e15) }, 'runAt'],
    ['runAt before year 1', { runAt: new Date('-000001-01-01T00:00:00Z') }, 'runAt'],
    ['a delayMs past year 9999', { delayMs: Number.MAX_SAFE_INTEGER }, 'delayMs'],
    ['timeoutMs 0', { timeoutMs: 0 }, 'timeoutMs'],
    ['a negative timeoutMs', { timeoutMs: -100 }, 'timeoutMs'],
    ['an unknown backoff type', { backoff: { type: 'linear', delayMs: 10 } }, 'backoff.type'],
    ['a negative backoff delay', { backoff: { type: 'fixed', delayMs: -10 } }, 'backoff.delayMs'],
    ['maxDelayMs below delayMs', { backoff: { type: 'exponential', delayMs: 100, maxDelayMs: 50 } }, 'backoff.maxDelayMs'],
    ['jitter above 1', { backoff: { type: 'fixed', delayMs: 10, jitter: 2 } }, 'backoff.jitter'],
  ])('refuses %s', async (_what, options, option) => {
    const error = await queue.add('q', 'n', {}, options as never).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InvalidJobOptionError);
    expect((error as InvalidJobOptionError).option).toBe(option);
    expect((error as Error).message).toContain(option);
  });

  it.each([
    ["BullMQ's delay", { delay: 5000 }, 'delay', 'did you mean delayMs?'],
    ["BullMQ's attempts", { attempts: 3 }, 'attempts', 'did you mean maxAttempts?'],
    ['a wrong case', { delayms: 10 }, 'delayms', 'did you mean delayMs?'],
    ['a near spelling', { priorty: 1 }, 'priorty', 'did you mean priority?'],
    ["BullMQ's lifo (no such feature)", { lifo: true }, 'lifo', 'no option of that name (options are runAt, delayMs'],
    ['a backoff key', { backoff: { type: 'fixed', delay: 100 } }, 'backoff.delay', 'did you mean backoff.delayMs?'],
  ])('refuses an unknown key: %s', async (_what, options, option, hint) => {
    const error = await queue.add('q', 'n', {}, options as never).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InvalidJobOptionError);
    expect((error as InvalidJobOptionError).option).toBe(option);
    expect((error as Error).message).toContain(hint);
    const bulk = await queue.addBulk([{ queue: 'q', name: 'n', data: {}, options: options as never }]).catch((e: unknown) => e);
    expect((bulk as InvalidJobOptionError).option).toBe(option);
  });

  it('refuses an unknown key of an addBulk entry', async () => {
    const error = await queue.addBulk([{ queue: 'q', name: 'n', data: {} }, { queue: 'q', name: 'n', data: {}, opts: { delay: 1 } } as never]).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InvalidJobOptionError);
    expect((error as InvalidJobOptionError).option).toBe('jobs[1].opts');
    expect((error as Error).message).toContain('did you mean jobs[1].options?');
  });

  it('validates every addBulk entry before inserting any', async () => {
    const error = await queue
      .addBulk([
        { queue: 'q', name: 'ok', data: { fine: true } },
        { queue: 'q', name: 'ok', data: { fine: true } },
        { queue: 'q', name: 'bad', data: { id: 1n } },
      ])
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InvalidJobDataError);
    expect((error as InvalidJobDataError).path).toBe('jobs[2].data.id');
  });

  it('refuses data over 32 MiB as JSON (in bytes, not characters), naming it', async () => {
    const big = { blob: 'x'.repeat(32 * 1024 * 1024) };
    const error = await queue.add('q', 'n', big).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InvalidJobDataError);
    expect((error as InvalidJobDataError).path).toBe('data');
    expect((error as Error).message).toMatch(/at most 33554432 bytes/);
    const bulkError = await queue.addBulk<unknown>([{ queue: 'q', name: 'n', data: {} }, { queue: 'q', name: 'n', data: big }]).catch((e: unknown) => e);
    expect((bulkError as InvalidJobDataError).path).toBe('jobs[1].data');
    // Multi-byte characters count as bytes: 12 M three-byte characters are 36 MB.
    await expect(queue.add('q', 'n', { s: '\u20ac'.repeat(12 * 1024 * 1024) })).rejects.toBeInstanceOf(InvalidJobDataError);
  });

  it('one row in a group of concurrent add()s never fails the others: a lone surrogate, a bad runAt', async () => {
    const results = await Promise.allSettled([
      queue.add('q', 'first', {}),
      queue.add('q', 'ok', { i: 1 }),
      queue.add('q', 'bad \ud83c', { i: 2 }),
      queue.add('q', 'ok', { i: 3 }, { runAt: new Date('+010000-01-01T00:00:00Z') }),
      queue.add('q', 'ok', { i: 4 }),
    ]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'fulfilled', 'rejected', 'rejected', 'fulfilled']);
    expect((results[2] as PromiseRejectedResult).reason).toBeInstanceOf(InvalidJobOptionError);
    expect((results[3] as PromiseRejectedResult).reason).toBeInstanceOf(InvalidJobOptionError);
    expect(await stored()).toBe(3);
    await sql(`DELETE FROM "${schema}".queue_jobs`);
  });

  it('a row the database itself refuses (a constraint of the app\'s) fails only its own add() of a group', async () => {
    await sql(`ALTER TABLE "${schema}".queue_jobs ADD CONSTRAINT app_rule CHECK (data->>'x' IS DISTINCT FROM 'refused')`);
    try {
      const results = await Promise.allSettled(['a', 'b', 'refused', 'c', 'd'].map((x) => queue.add('q', 'n', { x })));
      expect(results.map((r) => r.status)).toEqual(['fulfilled', 'fulfilled', 'rejected', 'fulfilled', 'fulfilled']);
      expect(String((results[2] as PromiseRejectedResult).reason)).toMatch(/app_rule/);
      expect(await stored()).toBe(4);
    } finally {
      await sql(`DELETE FROM "${schema}".queue_jobs`);
      await sql(`ALTER TABLE "${schema}".queue_jobs DROP CONSTRAINT app_rule`);
    }
  });

  it('27 concurrent 10 MB add()s all succeed: groups are bounded in bytes, not only rows', async () => {
    const payload = { blob: 'y'.repeat(10 * 1024 * 1024) };
    const results = await Promise.allSettled(Array.from({ length: 27 }, () => queue.add('q', 'big', payload)));
    expect(results.filter((r) => r.status === 'rejected').map((r) => String((r as PromiseRejectedResult).reason))).toEqual([]);
    expect(await stored()).toBe(27);
    await sql(`DELETE FROM "${schema}".queue_jobs`);
  }, 120_000);

  it('refuses ids that are not job ids', async () => {
    for (const id of ['', 'abc', '1; DROP TABLE x', '-1', '1.5', 12 as unknown as string]) {
      await expect(queue.getJob(id)).rejects.toBeInstanceOf(InvalidJobOptionError);
      await expect(queue.cancel(id)).rejects.toBeInstanceOf(InvalidJobOptionError);
      await expect(queue.retry(id)).rejects.toBeInstanceOf(InvalidJobOptionError);
    }
  });
});
