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

  it('refuses ids that are not job ids', async () => {
    for (const id of ['', 'abc', '1; DROP TABLE x', '-1', '1.5', 12 as unknown as string]) {
      await expect(queue.getJob(id)).rejects.toBeInstanceOf(InvalidJobOptionError);
      await expect(queue.cancel(id)).rejects.toBeInstanceOf(InvalidJobOptionError);
      await expect(queue.retry(id)).rejects.toBeInstanceOf(InvalidJobOptionError);
    }
  });
});
