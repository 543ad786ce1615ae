import type { INestApplicationContext } from '@nestjs/common';
import { Handle, InvalidJobOptionError, Processor, QueueService, STATS_BUCKET_BOUNDS_MS } from '../../lib';
import { QueueDatabase } from '../../lib/database/queue-database';
import { StatsRepository, type RollupDelta } from '../../lib/database/stats.repository';
import { JobLifecycle } from '../../lib/worker/job-lifecycle';
import { createTestApp } from './helpers/app';
import { dropSchema, sql, uniqueSchema } from './helpers/database';
import { waitFor } from './helpers/wait-for';
import { CapturingLogger } from './helpers/log-capture';

const schema = uniqueSchema('stats');
const DAY_MS = 86_400_000;
const MINUTE_MS = 60_000;

@Processor('rollups', { concurrency: 4 })
class RollupProcessor {
  @Handle('ok') ok() {}
}

function delta(minute: number, completed: number, waitBucket: number): RollupDelta {
  const buckets = new Array<number>(STATS_BUCKET_BOUNDS_MS.length + 1).fill(0);
  buckets[waitBucket] = completed;
  return {
    queue: 'direct',
    name: 'n',
    minute,
    completed,
    failed: 0,
    retried: 0,
    rescued: 0,
    wait_count: completed,
    wait_sum_ms: completed * 3,
    wait_buckets: buckets,
    run_count: 0,
    run_sum_ms: 0,
    run_buckets: buckets.map(() => 0),
  };
}

/** The per-minute rollups: summed across writers, read by getStats, pruned after their retention. */
describe('per-minute rollups', () => {
  let app: INestApplicationContext;
  let queue: QueueService;
  let stats: StatsRepository;

  beforeAll(async () => {
    app = await createTestApp({
      schema,
      providers: [RollupProcessor],
      queue: { worker: { pollIntervalMs: 50 }, stats: { flushIntervalMs: 100, retentionMs: DAY_MS } },
    });
    queue = app.get(QueueService);
    stats = new StatsRepository(await app.get(QueueDatabase).getRepository());
  });
  afterAll(async () => {
    await app?.close();
    await dropSchema(schema);
  });

  it('adds what each writer brings to the same minute (never overwrites), bucket by bucket', async () => {
    const minute = Math.floor(Date.now() / MINUTE_MS) * MINUTE_MS - 5 * MINUTE_MS;
    await stats.add([delta(minute, 3, 1)]);
    await stats.add([delta(minute, 4, 1), delta(minute + MINUTE_MS, 1, 0)]);
    await stats.add([delta(minute, 2, 3)]);
    const rows = await queue.getStats({ queue: 'direct', since: new Date(minute), until: new Date(minute + 2 * MINUTE_MS) });
    expect(rows.map((r) => [r.minute.getTime(), r.completed, r.waitTime.count])).toEqual([
      [minute, 9, 9],
      [minute + MINUTE_MS, 1, 1],
    ]);
    expect(rows[0].waitTime.buckets.slice(0, 5)).toEqual([0, 7, 0, 2, 0]);
    expect(rows[0].waitTime.sumMs).toBe(27);
    // 7 of 9 in (1, 5] ms: the median interpolates inside that bucket, p95 in (10, 25].
    expect(rows[0].waitTime.p50Ms).toBeCloseTo(1 + 4 * (4.5 / 7), 5);
    expect(rows[0].waitTime.p95Ms).toBeGreaterThan(10);
    expect(rows[0].waitTime.p95Ms).toBeLessThanOrEqual(25);
    expect(rows[0].runTime).toEqual({ count: 0, sumMs: 0, p50Ms: null, p95Ms: null, buckets: new Array(STATS_BUCKET_BOUNDS_MS.length + 1).fill(0) });
    // since is inclusive, until exclusive.
    expect(await queue.getStats({ queue: 'direct', since: new Date(minute + 1), until: new Date(minute + MINUTE_MS) })).toEqual([]);
  });

  it('a worker writes its jobs\' rollups within a few flush intervals', async () => {
    await queue.addBulk(Array.from({ length: 30 }, () => ({ queue: 'rollups', name: 'ok', data: {} })));
    const total = await waitFor('30 completions in the rollups', async () => {
      const rows = await queue.getStats({ queue: 'rollups' });
      const sum = rows.reduce((n, r) => n + r.completed, 0);
      return sum === 30 ? rows : null;
    });
    expect(total.every((r) => r.name === 'ok' && r.runTime.count === r.completed)).toBe(true);
  });

  it('prunes the minutes older than stats.retentionMs (the pruner runs at start and every minute)', async () => {
    const now = Math.floor(Date.now() / MINUTE_MS) * MINUTE_MS;
    await stats.add([delta(now - 3 * DAY_MS, 1, 0), delta(now - 2 * MINUTE_MS, 1, 0)]);
    const count = async () => (await sql<{ n: number }>(`SELECT count(*)::int AS n FROM "${schema}".queue_jobs_stats WHERE queue = 'direct' AND minute < now() - interval '1 day'`))[0].n;
    expect(await count()).toBe(1);
    // A second app's worker starts its own pruner, which runs once at start.
    const second = await createTestApp({ schema, providers: [RollupProcessor], queue: { worker: { pollIntervalMs: 50 }, stats: { retentionMs: DAY_MS } } });
    try {
      await waitFor('the old rollup to be pruned', async () => (await count()) === 0);
    } finally {
      await second.close();
    }
    expect((await queue.getStats({ queue: 'direct', since: new Date(now - 3 * MINUTE_MS), until: new Date(now) })).length).toBe(1);
  });

  it('a write that fails keeps its counts for the next one: nothing is lost or counted twice', async () => {
    const failing = `${schema}_failing`;
    const logger = new CapturingLogger();
    const own = await createTestApp({ schema: failing, providers: [RollupProcessor], logger, queue: { worker: { pollIntervalMs: 50 }, stats: { flushIntervalMs: 100 } } });
    try {
      const q = own.get(QueueService);
      // The table goes away: every write fails (a real error of the database, not a mock).
      await sql(`ALTER TABLE "${failing}".queue_jobs_stats RENAME TO stats_away`);
      await q.addBulk(Array.from({ length: 10 }, () => ({ queue: 'rollups', name: 'ok', data: {} })));
      await waitFor('the jobs to complete', async () => (await q.getCounts('rollups')).completed === 10);
      await waitFor('a failed write', () => logger.find('warn', /Stats writer failed/).length > 0);
      await q.addBulk(Array.from({ length: 5 }, () => ({ queue: 'rollups', name: 'ok', data: {} })));
      await waitFor('the later jobs to complete', async () => (await q.getCounts('rollups')).completed === 15);
      await sql(`ALTER TABLE "${failing}".stats_away RENAME TO queue_jobs_stats`);
      await waitFor('every completion in the rollups', async () => (await q.getStats({ queue: 'rollups' })).reduce((n, r) => n + r.completed, 0) === 15);
      expect(logger.find('log', /Stats writer resumed/).length).toBeGreaterThan(0);
      // One more job, one more flush: exactly 16, so what was given back was written once.
      await q.add('rollups', 'ok', {});
      const rows = await waitFor('the next flush', async () => {
        const found = await q.getStats({ queue: 'rollups' });
        return found.reduce((n, r) => n + r.completed, 0) >= 16 ? found : null;
      });
      expect(rows.reduce((n, r) => n + r.completed, 0)).toBe(16);
      expect(rows.reduce((n, r) => n + r.waitTime.count, 0)).toBe(16);
    } finally {
      await own.close();
      await dropSchema(failing);
    }
  });

  it.each([
    ['a since that is not a Date', { since: '2026-01-01' }, 'since'],
    ['an invalid Date', { until: new Date('nope') }, 'until'],
    ['since after until', { since: new Date(2000), until: new Date(1000) }, 'since'],
    ['a bad queue name', { queue: '' }, 'queue'],
  ])('getStats refuses %s', async (_what, filter, option) => {
    const error = await queue.getStats(filter as never).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InvalidJobOptionError);
    expect((error as InvalidJobOptionError).option).toBe(option);
  });

  it('with stats: false (and no metrics) nothing listens to the lifecycle hub and nothing is written', async () => {
    const off = await createTestApp({ schema: `${schema}_off`, providers: [RollupProcessor], queue: { worker: { pollIntervalMs: 50 }, stats: false } });
    try {
      expect(off.get(JobLifecycle).active).toBe(false);
      const q = off.get(QueueService);
      const job = await q.add('rollups', 'ok', {});
      await waitFor('the job to complete', async () => (await q.getJob(job.id))?.state === 'completed');
      expect(await q.getStats()).toEqual([]);
    } finally {
      await off.close();
      await dropSchema(`${schema}_off`);
    }
  });
});
