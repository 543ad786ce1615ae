import type { INestApplicationContext } from '@nestjs/common';
import { Handle, InvalidJobOptionError, JobState, Processor, QueueService, RateLimitedError, type ActiveJob } from '../../lib';
import { createTestApp } from './helpers/app';
import { dropSchema, sql, uniqueSchema } from './helpers/database';
import { waitForJobState } from './helpers/jobs';
import { busiestWindow, insertGrouped, sampleLimits, setLimits } from './helpers/limits';
import { waitFor } from './helpers/wait-for';
import { QueueDatabase } from '../../lib/database/queue-database';
import { LimitsRepository } from '../../lib/database/limits.repository';
import { STALE_GROUP_AGE_MS } from '../../lib/worker/maintenance/group-janitor';
import { createQueueTester } from '../../lib/testing';

// Limits enforced by the claim, with two worker apps on one database (two "nodes" in this process;
// the child-process version with kills is chaos/limits-kill.spec.ts). Limits are written into the
// registry as runtime overrides (what updateQueue writes), groups straight into group_key.
const schema = uniqueSchema('limits');
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** What the handlers saw, per job id: each attempt's start and end (this process's clock). */
const runs = new Map<string, { start: number; end: number }[]>();
/** Jobs that threw their RateLimitedError already (a job asks for one with `data.rateLimit`). */
const rateLimited = new Set<string>();

interface WorkData {
  ms?: number;
  rateLimit?: { ms: number; scope: 'queue' | 'group' };
}

async function work(job: ActiveJob<WorkData>) {
  const start = Date.now();
  if (job.data.rateLimit && !rateLimited.has(job.id)) {
    rateLimited.add(job.id);
    throw new RateLimitedError(job.data.rateLimit.ms, { scope: job.data.rateLimit.scope });
  }
  await sleep(job.data.ms ?? 0);
  const list = runs.get(job.id) ?? [];
  list.push({ start, end: Date.now() });
  runs.set(job.id, list);
}

function processor(queue: string, concurrency: number) {
  @Processor(queue, { concurrency })
  class LimitedProcessor {
    @Handle()
    run(job: ActiveJob<WorkData>) {
      return work(job);
    }
  }
  Object.defineProperty(LimitedProcessor, 'name', { value: `Processor_${queue.replace(/\W/g, '_')}` });
  return LimitedProcessor;
}

const PROCESSORS = [
  processor('lim-global', 10),
  processor('lim-rate', 10),
  processor('lim-groups', 4),
  processor('lim-change', 8),
  processor('lim-429', 4),
  processor('lim-429-serial', 4),
];

describe('limits enforced by the claim, across two workers', () => {
  const apps: INestApplicationContext[] = [];
  let queue: QueueService;
  const states = async (q: string) =>
    Object.fromEntries((await sql<{ state: string; n: number }>(`SELECT state, count(*)::int AS n FROM "${schema}".queue_jobs WHERE queue = $1 GROUP BY state`, [q])).map((r) => [r.state, r.n]));
  const allCompleted = (q: string, n: number, timeoutMs = 30_000) =>
    waitFor(`${n} jobs of ${q} to complete`, async () => (await states(q)).completed === n, timeoutMs, 50);
  const startedAt = async (ids: string[]) =>
    new Map((await sql<{ id: string; s: Date; f: Date | null }>(`SELECT id::text, started_at AS s, finished_at AS f FROM "${schema}".queue_jobs WHERE id = ANY($1::bigint[])`, [ids])).map((r) => [r.id, r]));

  /** Waits for a RateLimitedError's block to be written and returns its end. */
  const blockOf = async (query: string) =>
    (await waitFor('the block to be written', async () => (await sql<{ until: Date | null }>(query))[0]?.until)) as Date;

  beforeAll(async () => {
    const producer = await createTestApp({ schema, queue: { worker: false } });
    apps.push(producer);
    queue = producer.get(QueueService);
    // Limits exist before the workers boot, except those the tests set at runtime.
    await setLimits(schema, 'lim-global', { globalConcurrency: 5 });
    await setLimits(schema, 'lim-rate', { rateLimit: { max: 20, perMs: 500 } });
    await setLimits(schema, 'lim-groups', { groupConcurrency: 1 });
    for (let i = 0; i < 2; i++) {
      apps.push(await createTestApp({ schema, providers: PROCESSORS, queue: { worker: { pollIntervalMs: 100 } } }));
    }
  });
  afterAll(async () => {
    for (const app of apps.reverse()) await app.close();
    await dropSchema(schema);
  });

  it('global concurrency: never more than globalConcurrency active across both workers (20 local slots), sampled every 10 ms', async () => {
    const sampler = sampleLimits(schema, 'lim-global');
    await queue.addBulk(Array.from({ length: 80 }, (_, i) => ({ queue: 'lim-global', name: 'x', data: { ms: 20, i } })));
    await allCompleted('lim-global', 80);
    const seen = await sampler.stop();
    expect(seen.count).toBeGreaterThan(20);
    expect(seen.maxActive).toBeLessThanOrEqual(5);
    // The limit is used, not undershot to nothing.
    expect(seen.maxActive).toBeGreaterThanOrEqual(3);
  });

  it('rate limit: no window of perMs holds more than max starts (started_at), and the drain runs near the limit', async () => {
    const t0 = Date.now();
    await queue.addBulk(Array.from({ length: 70 }, (_, i) => ({ queue: 'lim-rate', name: 'x', data: { i } })));
    await allCompleted('lim-rate', 70);
    expect(await busiestWindow(schema, 'lim-rate', 500)).toBeLessThanOrEqual(20);
    // 70 starts at 20 per 500 ms need at least three full windows after the first burst.
    const [{ span }] = await sql<{ span: number }>(
      `SELECT extract(epoch FROM max(started_at) - min(started_at)) * 1000 AS span FROM "${schema}".queue_jobs WHERE queue = 'lim-rate'`,
    );
    expect(Number(span)).toBeGreaterThanOrEqual(1500);
    // ... and not much more: the claim wakes when the window frees (not at the next poll only).
    expect(Date.now() - t0).toBeLessThan(8000);
  });

  it('serial groups: one job of a group at a time, in order; a lone group is not delayed by a big one; groups take turns', async () => {
    const big = await insertGrouped(schema, 'lim-groups', Array.from({ length: 20 }, (_, i) => ({ name: 'x', group: 'big', data: { ms: 15, i } })));
    const small = await insertGrouped(schema, 'lim-groups', ['a', 'b', 'c', 'd', 'e', 'f'].flatMap((g) => [{ name: 'x', group: g, data: { ms: 15 } }, { name: 'x', group: g, data: { ms: 15 } }]));
    const sampler = sampleLimits(schema, 'lim-groups');
    await allCompleted('lim-groups', big.length + small.length);
    const seen = await sampler.stop();
    expect(seen.maxPerGroup).toBe(1);
    const rows = await startedAt([...big, ...small]);
    // The big group's jobs ran one after the other, in insertion order (its claim order).
    for (let i = 1; i < big.length; i++) {
      const [prev, next] = [rows.get(big[i - 1])!, rows.get(big[i])!];
      expect(next.s.getTime()).toBeGreaterThanOrEqual(prev.f!.getTime());
    }
    // Every small group was done before the big group was a third through: turns, not oldest first.
    const lastSmall = Math.max(...small.map((id) => rows.get(id)!.f!.getTime()));
    expect(lastSmall).toBeLessThan(rows.get(big[Math.floor(big.length / 3)])!.s.getTime());

    // A lone job of a new group, added while the big group has many pending: it starts within a
    // claim cycle, not after them.
    const more = await insertGrouped(schema, 'lim-groups', Array.from({ length: 30 }, () => ({ name: 'x', group: 'big', data: { ms: 30 } })));
    await waitFor('the big group to be under way', async () => (await states('lim-groups')).active === 1);
    const [lone] = await insertGrouped(schema, 'lim-groups', [{ name: 'x', group: 'lone' }]);
    await waitForJobState(queue, lone, JobState.Completed);
    const after = await startedAt([lone, ...more]);
    const bigStartedBeforeLone = more.filter((id) => after.get(id)!.s && after.get(id)!.s < after.get(lone)!.s).length;
    expect(bigStartedBeforeLone).toBeLessThanOrEqual(4);
    await allCompleted('lim-groups', big.length + small.length + more.length + 1);
  });

  it('limits set and removed while jobs run take effect within about a second on both workers, and strand nothing', async () => {
    await queue.addBulk(Array.from({ length: 300 }, (_, i) => ({ queue: 'lim-change', name: 'x', data: { ms: 25, i } })));
    await waitFor('the unlimited drain to run wide', async () => ((await states('lim-change')).active ?? 0) > 4, 10_000, 10);
    // Down: at most 2 at once, a second and a half after it was set.
    await setLimits(schema, 'lim-change', {}, { globalConcurrency: 2 });
    await sleep(1500);
    const narrow = sampleLimits(schema, 'lim-change');
    await sleep(700);
    const down = await narrow.stop();
    expect(down.maxActive).toBeLessThanOrEqual(2);
    expect(down.maxActive).toBeGreaterThan(0);
    // Up again (the override removed: no limit): the workers go wide again.
    await setLimits(schema, 'lim-change', {}, {});
    await waitFor('the drain to run wide again', async () => ((await states('lim-change')).active ?? 0) > 2, 5_000, 10);
    await allCompleted('lim-change', 300);
    expect((await states('lim-change')).pending).toBeUndefined();
  });

  it('RateLimitedError(queue): the attempt is refunded and no job of the queue starts anywhere until retryAfterMs passed', async () => {
    const [first] = await queue.addBulk([{ queue: 'lim-429', name: 'x', data: { rateLimit: { ms: 700, scope: 'queue' } } }]);
    const until = await blockOf(`SELECT rate_limited_until AS until FROM "${schema}".queue_jobs_queues WHERE name = 'lim-429'`);
    const others = await queue.addBulk(Array.from({ length: 5 }, () => ({ queue: 'lim-429', name: 'x', data: {} })));
    for (const job of [first, ...others]) await waitForJobState(queue, job.id, JobState.Completed);
    const rows = await startedAt([first.id, ...others.map((j) => j.id)]);
    for (const row of rows.values()) expect(row.s.getTime()).toBeGreaterThanOrEqual(until.getTime());
    expect(await queue.getJob(first.id)).toMatchObject({ attempts: 1, state: JobState.Completed });
  });

  it('RateLimitedError(group): only that group waits, on every node, in a queue without limits; a job without a group is held back alone', async () => {
    const [g1a] = await insertGrouped(schema, 'lim-429', [{ name: 'x', group: 'g1', data: { rateLimit: { ms: 800, scope: 'group' } } }]);
    const until = await blockOf(`SELECT rate_limited_until AS until FROM "${schema}".queue_jobs_groups WHERE queue = 'lim-429' AND group_key = 'g1'`);
    const [g1b, g2a] = await insertGrouped(schema, 'lim-429', [{ name: 'x', group: 'g1' }, { name: 'x', group: 'g2' }]);
    await waitForJobState(queue, g2a, JobState.Completed);
    for (const id of [g1a, g1b]) await waitForJobState(queue, id, JobState.Completed);
    const rows = await startedAt([g1a, g1b, g2a]);
    expect(rows.get(g2a)!.s.getTime()).toBeLessThan(until.getTime());
    expect(rows.get(g1a)!.s.getTime()).toBeGreaterThanOrEqual(until.getTime());
    expect(rows.get(g1b)!.s.getTime()).toBeGreaterThanOrEqual(until.getTime());
    expect(await queue.getJob(g1a)).toMatchObject({ attempts: 1 });

    // Without a group, scope 'group' holds back only the job itself.
    const sent = Date.now();
    const [lone] = await queue.addBulk([{ queue: 'lim-429', name: 'x', data: { rateLimit: { ms: 600, scope: 'group' } } }]);
    await waitFor('the lone job to be handed back', () => rateLimited.has(lone.id));
    const [other] = await queue.addBulk([{ queue: 'lim-429', name: 'x', data: {} }]);
    await waitForJobState(queue, other.id, JobState.Completed);
    const done = await waitForJobState(queue, lone.id, JobState.Completed);
    expect(done.attempts).toBe(1);
    expect(done.startedAt!.getTime() - sent).toBeGreaterThanOrEqual(550);
    expect((await queue.getJob(other.id))!.startedAt!.getTime()).toBeLessThan(done.startedAt!.getTime());
  });

  it('RateLimitedError(group) in a serial group: the job keeps its place and runs again before the next job of its group', async () => {
    await setLimits(schema, 'lim-429-serial', { groupConcurrency: 1 });
    const [first, second] = await insertGrouped(schema, 'lim-429-serial', [
      { name: 'x', group: 'p', data: { rateLimit: { ms: 500, scope: 'group' } } },
      { name: 'x', group: 'p' },
    ]);
    for (const id of [first, second]) await waitForJobState(queue, id, JobState.Completed);
    const until = await blockOf(`SELECT rate_limited_until AS until FROM "${schema}".queue_jobs_groups WHERE queue = 'lim-429-serial' AND group_key = 'p'`);
    const rows = await startedAt([first, second]);
    expect(rows.get(first)!.s.getTime()).toBeGreaterThanOrEqual(until.getTime());
    expect(rows.get(second)!.s.getTime()).toBeGreaterThanOrEqual(rows.get(first)!.f!.getTime());
  });

  it('the group janitor forgets group rows whose window and block ended a day ago, and keeps the others', async () => {
    await sql(
      `INSERT INTO "${schema}".queue_jobs_groups (queue, group_key, rate_limited_until, updated_at) VALUES
        ('janitor', 'stale', now() - interval '2 days', now() - interval '2 days'),
        ('janitor', 'stale-no-block', NULL, now() - interval '2 days'),
        ('janitor', 'blocked', now() + interval '1 hour', now() - interval '2 days'),
        ('janitor', 'fresh', NULL, now())`,
    );
    const limits = new LimitsRepository(apps[0].get(QueueDatabase).repository);
    expect(await limits.deleteStaleGroups(STALE_GROUP_AGE_MS, 1000)).toBe(2);
    const left = await sql<{ group_key: string }>(`SELECT group_key FROM "${schema}".queue_jobs_groups WHERE queue = 'janitor' ORDER BY group_key`);
    expect(left.map((r) => r.group_key)).toEqual(['blocked', 'fresh']);
  });

  it('the testing helpers run the jobs of a queue with limits (QueueTester.drain)', async () => {
    await setLimits(schema, 'lim-tester', { globalConcurrency: 1, groupConcurrency: 1 });
    const app = await createTestApp({ schema, providers: [processor('lim-tester', 2)], queue: { worker: false } });
    apps.push(app);
    await queue.addBulk(Array.from({ length: 3 }, (_, i) => ({ queue: 'lim-tester', name: 'x', data: { i } })));
    await insertGrouped(schema, 'lim-tester', [{ name: 'x', group: 'a' }, { name: 'x', group: 'a' }]);
    expect(await createQueueTester(app).drain('lim-tester')).toEqual({ completed: 5, failed: 0, retried: 0 });
  });

  it('RateLimitedError refuses bad arguments with an error naming them', () => {
    for (const bad of [-1, Number.NaN, Number.POSITIVE_INFINITY, '100' as unknown as number, 2 ** 31]) {
      expect(() => new RateLimitedError(bad)).toThrow(InvalidJobOptionError);
      expect(() => new RateLimitedError(bad)).toThrow(/RateLimitedError\(retryAfterMs\)/);
    }
    expect(() => new RateLimitedError(10, { scope: 'tenant' as 'group' })).toThrow(/RateLimitedError\(options.scope\)/);
    expect(() => new RateLimitedError(10, null as never)).toThrow(/RateLimitedError\(options\)/);
    const ok = new RateLimitedError(10.2, { scope: 'group' });
    expect(ok).toMatchObject({ retryAfterMs: 11, scope: 'group', name: 'RateLimitedError' });
    expect(new RateLimitedError(0).scope).toBe('queue');
  });
});
