import { isDeepStrictEqual } from 'node:util';
import type { INestApplicationContext } from '@nestjs/common';
import type { DataSource } from 'typeorm';
import {
  ConflictingProcessorOptionsError,
  Handle,
  InvalidJobOptionError,
  InvalidModuleOptionsError,
  Processor,
  QueueService,
  type ProcessorOptions,
  type QueueInfo,
} from '../../lib';
import { createTestApp, createTestDataSource } from './helpers/app';
import { dropSchema, sql, uniqueSchema } from './helpers/database';
import { CapturingLogger } from './helpers/log-capture';
import { waitFor } from './helpers/wait-for';
import { ChildWorkers } from './chaos/fixtures/child-worker';
import { QueueWorker } from '../../lib/worker/worker.service';
import { buildJobStatements } from '../../lib/database/sql/job.statements';
import { createTableNaming } from '../../lib/database/table-naming';

// Limits configuration (issue 12, part B): the limits a processor declares in code reach the queue
// registry at boot, runtime overrides (updateQueue) win over them until removed, and of two app
// versions that declare different values the newest declaration among the running workers applies,
// whatever the order in which their processes (re)start.
const schema = uniqueSchema('limitscfg');
/** Short leases, so declarations are renewed (every 500 ms) and lapse (after 3 s) within a test. */
const LEASE_MS = 1000;

/** A processor class of `queue` with `options`, as two versions of an app would declare it. */
function processorOf(queue: string, options: ProcessorOptions, name = 'Versioned', jobName?: string) {
  @Processor(queue, options)
  class VersionedProcessor {
    @Handle(jobName) run() {}
  }
  Object.defineProperty(VersionedProcessor, 'name', { value: name });
  return VersionedProcessor;
}

/** The registry row's columns as the claim reads them (the contract with the enforcement part). */
async function registryRow(queue: string): Promise<{ declared: Record<string, unknown>; overrides: Record<string, unknown> } | undefined> {
  const [row] = await sql<{ declared: Record<string, unknown>; overrides: Record<string, unknown> }>(
    `SELECT declared, overrides FROM "${schema}".queue_jobs_queues WHERE name = $1`,
    [queue],
  );
  return row;
}

describe('limits configuration', () => {
  const apps: INestApplicationContext[] = [];
  let queue: QueueService;
  let dataSource: DataSource;
  const workers = new ChildWorkers({ schema, appName: schema });

  const boot = async (providers: Function[], logger = new CapturingLogger(), lockDurationMs = LEASE_MS) => {
    const app = await createTestApp({ schema, providers: providers as never, logger, queue: { worker: { lockDurationMs, pollIntervalMs: 200 } } });
    apps.push(app);
    return { app, logger };
  };
  const close = async (app: INestApplicationContext) => {
    await app.close();
    apps.splice(apps.indexOf(app), 1);
  };
  const info = async (name: string): Promise<QueueInfo> => {
    const found = (await queue.getQueues()).find((q) => q.name === name);
    if (!found) throw new Error(`queue ${name} not in getQueues()`);
    return found;
  };

  beforeAll(async () => {
    const producer = await createTestApp({ schema, queue: { worker: false } });
    apps.push(producer);
    queue = producer.get(QueueService);
    dataSource = await createTestDataSource();
  });
  afterAll(async () => {
    await workers.killAll();
    for (const app of apps.reverse()) await app.close();
    await dataSource.destroy();
    await dropSchema(schema);
  });

  describe('bad processor options fail the boot with a typed error naming the option', () => {
    it.each([
      ['globalConcurrency 0', { globalConcurrency: 0 }, 'globalConcurrency', 'an integer from 1'],
      ['globalConcurrency fractional', { globalConcurrency: 1.5 }, 'globalConcurrency', 'an integer from 1'],
      ['globalConcurrency NaN', { globalConcurrency: NaN }, 'globalConcurrency', 'an integer from 1'],
      ['globalConcurrency as a string', { globalConcurrency: '5' }, 'globalConcurrency', 'an integer from 1'],
      ['groupConcurrency negative', { groupConcurrency: -1 }, 'groupConcurrency', 'an integer from 1'],
      ['rateLimit max 0', { rateLimit: { max: 0, perMs: 1000 } }, 'rateLimit.max', 'an integer from 1'],
      ['rateLimit perMs negative', { rateLimit: { max: 1, perMs: -5 } }, 'rateLimit.perMs', 'an integer from 1'],
      ['rateLimit max NaN', { rateLimit: { max: NaN, perMs: 1000 } }, 'rateLimit.max', 'an integer from 1'],
      ['rateLimit perMs fractional', { rateLimit: { max: 1, perMs: 0.5 } }, 'rateLimit.perMs', 'an integer from 1'],
      ['rateLimit without perMs', { rateLimit: { max: 1 } }, 'rateLimit.perMs', 'an integer from 1'],
      ['rateLimit not an object', { rateLimit: 100 }, 'rateLimit', 'an object { max, perMs }'],
      ['an unknown key inside rateLimit', { rateLimit: { max: 1, perMs: 1000, burst: 2 } }, 'rateLimit.burst', 'rateLimit takes max, perMs'],
      ["BullMQ's duration inside groupRateLimit", { groupRateLimit: { max: 1, duration: 1000 } }, 'groupRateLimit.duration', 'did you mean groupRateLimit.perMs?'],
      ['groupRateLimit max fractional', { groupRateLimit: { max: 2.5, perMs: 1000 } }, 'groupRateLimit.max', 'an integer from 1'],
    ])('%s', async (_what, options, option, expected) => {
      const Bad = processorOf('bad-limits', options as never, 'BadLimits');
      const error = await createTestApp({ schema, dataSource, providers: [Bad] }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(InvalidModuleOptionsError);
      expect((error as InvalidModuleOptionsError).option).toBe(`BadLimits @Processor ${option}`);
      expect((error as Error).message).toContain(expected);
    });

    it('two processors of one queue declaring different limits conflict; the same rate limit written in another key order does not', async () => {
      const A = processorOf('split-limits', { globalConcurrency: 2, rateLimit: { max: 5, perMs: 1000 } }, 'SplitA', 'a');
      const B = processorOf('split-limits', { globalConcurrency: 3 }, 'SplitB', 'b');
      const error = await createTestApp({ schema, dataSource, providers: [A, B] }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ConflictingProcessorOptionsError);
      expect((error as Error).message).toMatch(/SplitA and SplitB of queue "split-limits" declare different values of globalConcurrency: 2 and 3/);

      const C = processorOf('split-limits', { rateLimit: { perMs: 1000, max: 5 } }, 'SplitC', 'c');
      const { app } = await boot([A, C]);
      expect((await info('split-limits')).declared).toEqual({ globalConcurrency: 2, rateLimit: { max: 5, perMs: 1000 } });
      await close(app);
    });
  });

  it('a globalConcurrency below the local concurrency is allowed, and said once at boot', async () => {
    const { app, logger } = await boot([processorOf('narrow', { concurrency: 20, globalConcurrency: 5 })]);
    const said = () => logger.find('warn', /Queue "narrow": globalConcurrency 5 is below this process's concurrency 20/);
    expect(said()).toHaveLength(1);
    // Renewals of the declaration (every 500 ms) do not repeat it.
    await waitRenewals('narrow', 2);
    expect(said()).toHaveLength(1);
    expect((await info('narrow')).limits.globalConcurrency).toEqual({ value: 5, source: 'code' });
    await close(app);
  });

  it('a worker writes its declared limits into the registry at boot, in the keys the claim reads; getQueues reports each limit and its source', async () => {
    const declared = { globalConcurrency: 50, rateLimit: { max: 100, perMs: 1000 }, groupConcurrency: 1, groupRateLimit: { max: 5, perMs: 1000 } };
    const { app } = await boot([processorOf('payments', { concurrency: 20, ...declared }), processorOf('plain', {}, 'Plain')]);
    expect(await registryRow('payments')).toEqual({ declared, overrides: {} });
    const payments = await info('payments');
    expect(payments.declared).toEqual(declared);
    expect(payments.overrides).toEqual({});
    expect(payments.limits).toEqual({
      globalConcurrency: { value: 50, source: 'code' },
      rateLimit: { value: { max: 100, perMs: 1000 }, source: 'code' },
      groupConcurrency: { value: 1, source: 'code' },
      groupRateLimit: { value: { max: 5, perMs: 1000 }, source: 'code' },
    });
    // A queue without limits declares none (so a limit removed from the code is removed here too).
    expect(await registryRow('plain')).toEqual({ declared: {}, overrides: {} });
    expect((await info('plain')).limits).toEqual({
      globalConcurrency: { value: null, source: 'none' },
      rateLimit: { value: null, source: 'none' },
      groupConcurrency: { value: null, source: 'none' },
      groupRateLimit: { value: null, source: 'none' },
    });
    await close(app);
  });

  it('a registry row deleted while workers run is made again, with their declaration, at the next renewal', async () => {
    const { app } = await boot([processorOf('deleted', { groupConcurrency: 3 })]);
    await sql(`DELETE FROM "${schema}".queue_jobs_queues WHERE name = 'deleted'`);
    await waitFor('the row to be back with the declaration', async () => isDeepStrictEqual((await registryRow('deleted'))?.declared, { groupConcurrency: 3 }), 10_000);
    await close(app);
  });

  it('updateQueue sets runtime overrides from a worker: false process, wins over the code, and null removes an override', async () => {
    const { app } = await boot([processorOf('tuned', { globalConcurrency: 50, rateLimit: { max: 100, perMs: 1000 } })]);
    const updated = await queue.updateQueue('tuned', { globalConcurrency: 10, groupRateLimit: { max: 2, perMs: 500 } });
    expect(updated.name).toBe('tuned');
    expect(updated.overrides).toEqual({ globalConcurrency: 10, groupRateLimit: { max: 2, perMs: 500 } });
    expect(updated.limits).toEqual({
      globalConcurrency: { value: 10, source: 'runtime' },
      rateLimit: { value: { max: 100, perMs: 1000 }, source: 'code' },
      groupConcurrency: { value: null, source: 'none' },
      groupRateLimit: { value: { max: 2, perMs: 500 }, source: 'runtime' },
    });
    expect(await registryRow('tuned')).toEqual({
      declared: { globalConcurrency: 50, rateLimit: { max: 100, perMs: 1000 } },
      overrides: { globalConcurrency: 10, groupRateLimit: { max: 2, perMs: 500 } },
    });

    // A restarted worker re-declares its code's values; the override still wins.
    await close(app);
    const restarted = await boot([processorOf('tuned', { globalConcurrency: 50, rateLimit: { max: 100, perMs: 1000 } })]);
    expect((await info('tuned')).limits.globalConcurrency).toEqual({ value: 10, source: 'runtime' });
    expect(restarted.logger.find('log', /Queue "tuned": runtime overrides \(QueueService.updateQueue\) apply instead of the code's declaration: globalConcurrency 10 \(declared 50\), groupRateLimit/)).toHaveLength(1);

    // null removes an override: the declared value applies again; keys left out are left alone.
    const removed = await queue.updateQueue('tuned', { globalConcurrency: null, rateLimit: { max: 7, perMs: 100 } });
    expect(removed.limits.globalConcurrency).toEqual({ value: 50, source: 'code' });
    expect(removed.limits.rateLimit).toEqual({ value: { max: 7, perMs: 100 }, source: 'runtime' });
    expect(removed.limits.groupRateLimit).toEqual({ value: { max: 2, perMs: 500 }, source: 'runtime' });
    expect((await registryRow('tuned'))!.overrides).toEqual({ rateLimit: { max: 7, perMs: 100 }, groupRateLimit: { max: 2, perMs: 500 } });
    // Removing an override that is not set is a no-op.
    expect((await queue.updateQueue('tuned', { groupConcurrency: null })).overrides).toEqual({ rateLimit: { max: 7, perMs: 100 }, groupRateLimit: { max: 2, perMs: 500 } });
    await close(restarted.app);
  });

  it('updateQueue wakes the queue\'s workers (a raised limit lets pending jobs start now, not at the next poll)', async () => {
    const ran: string[] = [];
    @Processor('woken', { globalConcurrency: 1 })
    class Woken {
      @Handle() run(job: { id: string }) {
        ran.push(job.id);
      }
    }
    const app = await createTestApp({ schema, providers: [Woken], queue: { worker: { pollIntervalMs: 60_000 } } });
    apps.push(app);
    // A job no notification announced (inserted behind the queue's back): only a poll or a wake-up finds it.
    await waitFor('the worker to settle into its minute-long poll', async () => (await info('woken')).declared.globalConcurrency === 1);
    await new Promise((resolve) => setTimeout(resolve, 300)); // past the boot's first claims
    const [{ id }] = await sql<{ id: string }>(`INSERT INTO "${schema}".queue_jobs (queue, name, data) VALUES ('woken', 'x', '{}') RETURNING id::text`);
    const woken = Date.now();
    await queue.updateQueue('woken', { globalConcurrency: 5 });
    await waitFor('the job to run', () => ran.includes(id), 10_000);
    expect(Date.now() - woken).toBeLessThan(10_000);
    await close(app);
  });

  it('updateQueue creates the registry row of a queue no worker has declared yet', async () => {
    expect(await registryRow('not-yet')).toBeUndefined();
    const created = await queue.updateQueue('not-yet', { groupConcurrency: 1 });
    expect(created).toMatchObject({ name: 'not-yet', paused: false, declared: {}, overrides: { groupConcurrency: 1 } });
    expect(created.limits.groupConcurrency).toEqual({ value: 1, source: 'runtime' });
    expect(await registryRow('not-yet')).toEqual({ declared: {}, overrides: { groupConcurrency: 1 } });
    expect((await queue.getQueues()).map((q) => q.name)).toContain('not-yet');
  });

  it.each([
    ['an unknown key', { concurrency: 5 }, 'concurrency', 'no option of that name'],
    ["BullMQ's limiter", { limiter: { max: 1, duration: 1000 } }, 'limiter', 'did you mean rateLimit?'],
    ['globalConcurrency 0', { globalConcurrency: 0 }, 'globalConcurrency', 'an integer from 1 to 2147483647, or null to remove the override'],
    ['groupConcurrency fractional', { groupConcurrency: 0.5 }, 'groupConcurrency', 'an integer from 1'],
    ['rateLimit max NaN', { rateLimit: { max: NaN, perMs: 1000 } }, 'rateLimit.max', 'an integer from 1'],
    ['rateLimit perMs 0', { rateLimit: { max: 5, perMs: 0 } }, 'rateLimit.perMs', 'an integer from 1'],
    ['an unknown key inside groupRateLimit', { groupRateLimit: { max: 5, perMs: 10, per: 'second' } }, 'groupRateLimit.per', 'groupRateLimit takes max, perMs'],
    ['null inside a rate limit', { rateLimit: { max: null, perMs: 1000 } }, 'rateLimit.max', 'an integer from 1'],
  ])('updateQueue refuses %s with a typed error naming the option, and writes nothing', async (_what, update, option, expected) => {
    const error = await queue.updateQueue('refused', update as never).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InvalidJobOptionError);
    expect((error as InvalidJobOptionError).option).toBe(option);
    expect((error as Error).message).toContain(expected);
    expect(await registryRow('refused')).toBeUndefined();
  });

  it('updateQueue refuses a bad queue name and a non-object', async () => {
    await expect(queue.updateQueue('', { globalConcurrency: 1 })).rejects.toMatchObject({ option: 'queue' });
    await expect(queue.updateQueue('q', null as never)).rejects.toBeInstanceOf(InvalidJobOptionError);
    await expect(queue.updateQueue('q', [] as never)).rejects.toMatchObject({ option: 'limits' });
  });

  describe('two app versions declaring different limits (a rolling deploy)', () => {
    const V1 = { globalConcurrency: 5, rateLimit: { max: 10, perMs: 1000 } };
    const V2 = { globalConcurrency: 10 };
    // NOTE: one logger for every app of these tests: Nest's `Logger` instances write to the logger
    // of the app created last, so in one test process messages cannot be told apart by app, only
    // by what they say (worker ids, "this process declares …").
    const logs = new CapturingLogger();
    const said = (pattern: RegExp) => logs.find('warn', pattern).length;
    const workerIdOf = (app: INestApplicationContext) => app.get(QueueWorker).workerId;
    const bootVersion = (queueName: string, limits: ProcessorOptions, version: string) => boot([processorOf(queueName, limits, `Payments${version}`)], logs);

    it('the new version wins at its first boot; an old process restarting meanwhile does not win back; each change is logged with from and to', async () => {
      const old1 = await bootVersion('rolling', V1, 'V1');
      expect((await info('rolling')).declared).toEqual(V1);

      // The first process of the new version: its declaration applies at once, and it says what it changed.
      const new1 = await bootVersion('rolling', V2, 'V2');
      expect(await registryRow('rolling')).toEqual({ declared: V2, overrides: {} });
      expect(
        said(new RegExp(`Queue "rolling": the limits declared in code change: globalConcurrency 5 → 10, rateLimit \\{"max":10,"perMs":1000\\} → none \\(declared before by worker\\(s\\) ${workerIdOf(old1.app)}; now by this worker \\(${workerIdOf(new1.app)}\\)\\)`)),
      ).toBe(1);
      // The old process learns on its next renewal that its declaration no longer applies, and says so once.
      const outranked = new RegExp(`Queue "rolling": this process declares globalConcurrency 5, rateLimit \\{"max":10,"perMs":1000\\}, but the newer declaration of worker ${workerIdOf(new1.app)} applies: globalConcurrency 10`);
      await waitFor('the old process to say its declaration does not apply', () => said(outranked) === 1);
      await waitRenewals('rolling', 2);
      expect(said(outranked)).toBe(1);

      // An old-version process (re)starting during the rollout: the old declaration is held by a
      // running worker since before the new one, so it does not win back (pg-boss#644 the other way).
      const old2 = await bootVersion('rolling', V1, 'V1');
      expect((await registryRow('rolling'))!.declared).toEqual(V2);
      expect(said(outranked)).toBe(2);

      // The rollout goes on: the old processes stop. Nothing changes.
      await close(old1.app);
      await close(old2.app);
      expect((await registryRow('rolling'))!.declared).toEqual(V2);

      // A rollback: the old code deployed again once no new process runs wins, as any deploy does.
      await close(new1.app);
      expect((await registryRow('rolling'))!.declared).toEqual(V2); // nobody declares: the last declaration stays
      const back = await bootVersion('rolling', V1, 'V1');
      expect((await registryRow('rolling'))!.declared).toEqual(V1);
      expect(
        said(new RegExp(`Queue "rolling": the limits declared in code change: globalConcurrency 10 → 5, rateLimit none → \\{"max":10,"perMs":1000\\} \\(declared before by workers no longer running; now by this worker \\(${workerIdOf(back.app)}\\)\\)`)),
      ).toBe(1);
      await close(back.app);
    });

    it('when the new version stops while an old process still runs, the old declaration applies again at once (graceful) or once the dead one lapses (SIGKILL)', async () => {
      const old1 = await bootVersion('aborted', V1, 'V1');
      // Graceful: the new version's process withdraws its declaration at shutdown, and says what changes.
      const new1 = await bootVersion('aborted', V2, 'V2');
      expect((await registryRow('aborted'))!.declared).toEqual(V2);
      await close(new1.app);
      expect((await registryRow('aborted'))!.declared).toEqual(V1);
      expect(said(new RegExp(`Queue "aborted": this worker stops; the limits declared in code change: globalConcurrency 10 → 5, rateLimit none → .* \\(now by worker ${workerIdOf(old1.app)}\\)`))).toBe(1);

      // Killed: a real child process of the new version, SIGKILLed; its declaration lapses after
      // 3 lock durations, and the old process's next renewal brings its own back, naming the dead one.
      const child = await workers.start({ queue: 'aborted', limits: V2, worker: { lockDurationMs: LEASE_MS, pollIntervalMs: 200 } });
      expect((await registryRow('aborted'))!.declared).toEqual(V2);
      child.kill('SIGKILL');
      await child.exited;
      await waitFor("the killed worker's declaration to lapse", async () => isDeepStrictEqual((await registryRow('aborted'))!.declared, V1), 15_000);
      expect(
        said(new RegExp(`Queue "aborted": the limits declared in code change: globalConcurrency 10 → 5, rateLimit none → .*\\(declared before by worker\\(s\\) [^;]*:${child.pid}:[^;]*; now by this worker \\(${workerIdOf(old1.app)}\\)`)),
      ).toBe(1);
      await close(old1.app);
    }, 30_000);

    it('two processes booting at once with different declarations both land their entries, and exactly one declaration applies', async () => {
      const [a, b] = await Promise.all([bootVersion('racing', V1, 'V1'), bootVersion('racing', V2, 'V2')]);
      const [row] = await sql<{ declared: object; workers: Record<string, { limits: string }> }>(
        `SELECT declared, declarations -> 'workers' AS workers FROM "${schema}".queue_jobs_queues WHERE name = 'racing'`,
      );
      expect(Object.keys(row.workers).sort()).toEqual([workerIdOf(a.app), workerIdOf(b.app)].sort());
      expect([V1, V2]).toContainEqual(row.declared);
      await close(a.app);
      await close(b.app);
    });

    it('six processes of three versions booting at once all land their entries (compare and set), and one declaration applies', async () => {
      const versions = [V1, V2, { groupConcurrency: 2 }];
      const booted = await Promise.all(Array.from({ length: 6 }, (_, i) => bootVersion('stampede', versions[i % 3], `V${i % 3}`)));
      const [row] = await sql<{ declared: object; workers: Record<string, { limits: string }> }>(
        `SELECT declared, declarations -> 'workers' AS workers FROM "${schema}".queue_jobs_queues WHERE name = 'stampede'`,
      );
      expect(Object.keys(row.workers).sort()).toEqual(booted.map((b) => workerIdOf(b.app)).sort());
      expect(versions).toContainEqual(row.declared);
      // Every one of them stops gracefully: each withdraws its own entry, none is lost or left.
      for (const b of booted) await close(b.app);
      const [after] = await sql<{ workers: object }>(`SELECT declarations -> 'workers' AS workers FROM "${schema}".queue_jobs_queues WHERE name = 'stampede'`);
      expect(after.workers).toEqual({});
    });

    it('runtime overrides win over every declaration during the rollout, until removed', async () => {
      const old1 = await bootVersion('overridden', V1, 'V1');
      await queue.updateQueue('overridden', { globalConcurrency: 3 });
      const new1 = await bootVersion('overridden', V2, 'V2');
      const during = await info('overridden');
      expect(during.declared).toEqual(V2);
      expect(during.limits.globalConcurrency).toEqual({ value: 3, source: 'runtime' });
      expect(during.limits.rateLimit).toEqual({ value: null, source: 'none' });
      expect((await queue.updateQueue('overridden', { globalConcurrency: null })).limits.globalConcurrency).toEqual({ value: 10, source: 'code' });
      await close(new1.app);
      await close(old1.app);
    });
  });

  describe('the group option', () => {
    /** What the table stored, by id. */
    const stored = async (ids: string[]) =>
      new Map((await sql<{ id: string; group_key: string | null }>(`SELECT id::text, group_key FROM "${schema}".queue_jobs WHERE id = ANY($1::bigint[])`, [ids])).map((r) => [r.id, r.group_key]));
    /** Tabs, line breaks, backslashes, quotes and non-ASCII: what COPY and JSON must carry unchanged. */
    const odd = 'tenant\t1\nline\\x "q" ü 🎉';
    const longest = 'g'.repeat(255);

    it('add() stores the group on every single-insert path and returns it; getJob and getJobs return it; no group is null', async () => {
      const plain = await queue.add('grouped', 'x', {});
      const grouped = await queue.add('grouped', 'x', {}, { group: 'customer:1' });
      const withOptions = await queue.add('grouped', 'x', {}, { group: odd, priority: 5, delayMs: 1 });
      const inTransaction = await dataSource.transaction((manager) => queue.add('grouped', 'x', {}, { group: longest, manager }));
      const unique = await queue.add('grouped', 'x', {}, { group: 'customer:2', unique: { key: 'u1' } });
      const replaced = await queue.add('grouped', 'x', { v: 2 }, { group: 'customer:2', unique: { key: 'u1', replace: true } });
      // Concurrent adds share one batch statement (the group commit).
      const together = await Promise.all(['a', 'b', null, 'c'].map((g) => queue.add('grouped', 'x', {}, g === null ? {} : { group: g })));

      expect([plain, grouped, withOptions, inTransaction, unique].map((j) => j.group)).toEqual([null, 'customer:1', odd, longest, 'customer:2']);
      expect(replaced).toMatchObject({ id: unique.id, duplicate: true, group: 'customer:2' });
      expect(together.map((j) => j.group)).toEqual(['a', 'b', null, 'c']);
      const all = [plain, grouped, withOptions, inTransaction, unique, ...together];
      const table = await stored(all.map((j) => j.id));
      for (const job of all) {
        expect(table.get(job.id)).toBe(job.group);
        expect((await queue.getJob(job.id))!.group).toBe(job.group);
      }
      expect((await queue.getJobs({ queue: 'grouped', limit: 1000 })).filter((j) => j.group === odd)).toHaveLength(1);
    });

    it('addBulk stores each job\'s group by statements, by COPY (with and without other options), with delays and with unique keys', async () => {
      const groupOf = (i: number) => (i % 3 === 0 ? null : i % 3 === 1 ? `tenant:${i % 7}` : odd);
      const inputs = {
        statements: Array.from({ length: 10 }, (_, i) => ({ queue: 'bulk-grouped', name: 'x', data: { i }, options: groupOf(i) === null ? {} : { group: groupOf(i)! } })),
        copyDefaults: Array.from({ length: 200 }, (_, i) => ({ queue: 'bulk-grouped', name: 'x', data: { i }, options: groupOf(i) === null ? {} : { group: groupOf(i)! } })),
        copyOptions: Array.from({ length: 100 }, (_, i) => ({ queue: 'bulk-grouped', name: 'x', data: { i }, options: { priority: i % 4, ...(groupOf(i) === null ? {} : { group: groupOf(i)! }) } })),
        delayed: Array.from({ length: 80 }, (_, i) => ({ queue: 'bulk-grouped', name: 'x', data: { i }, options: { delayMs: 5, ...(groupOf(i) === null ? {} : { group: groupOf(i)! }) } })),
        uniqueCopy: Array.from({ length: 100 }, (_, i) => ({ queue: 'bulk-grouped', name: 'x', data: { i }, options: { unique: { key: `uc${i}` }, ...(groupOf(i) === null ? {} : { group: groupOf(i)! }) } })),
        uniqueStatements: Array.from({ length: 20 }, (_, i) => ({ queue: 'bulk-grouped', name: 'x', data: { i }, options: { unique: { key: `us${i}`, replace: true }, ...(groupOf(i) === null ? {} : { group: groupOf(i)! }) } })),
      };
      for (const [path, jobs] of Object.entries(inputs)) {
        const added = await queue.addBulk(jobs);
        expect({ path, groups: added.map((j) => j.group) }).toEqual({ path, groups: jobs.map((_, i) => groupOf(i)) });
        const table = await stored(added.map((j) => j.id));
        expect({ path, groups: added.map((j) => table.get(j.id)) }).toEqual({ path, groups: jobs.map((_, i) => groupOf(i)) });
      }
    });

    it('a plain add() keeps its statements: no group column or parameter unless the job has a group', () => {
      const statements = buildJobStatements(createTableNaming(schema, 'queue_jobs'));
      const placeholders = (text: string) => Math.max(...[...text.matchAll(/\$(\d+)/g)].map((m) => Number(m[1])));
      expect(placeholders(statements.insertOneDue)).toBe(3);
      expect(placeholders(statements.insertOne)).toBe(9);
      expect(statements.insertOne).not.toContain('group_key');
      expect(placeholders(statements.insertOneGrouped)).toBe(10);
      expect(statements.insertOneGrouped).toContain('"group_key"');
    });

    it('a handler sees its job\'s group', async () => {
      const seen: (string | null)[] = [];
      @Processor('group-seen', { concurrency: 4 })
      class GroupSeen {
        @Handle() run(job: { group: string | null }) {
          seen.push(job.group);
        }
      }
      const { app } = await boot([GroupSeen]);
      await queue.add('group-seen', 'x', {}, { group: odd });
      await queue.add('group-seen', 'x', {});
      await waitFor('both jobs to run', () => seen.length === 2);
      expect(seen.sort()).toEqual([null, odd].sort());
      await close(app);
    });

    it.each([
      ['an empty string', '', 'not an empty string'],
      ['256 characters', 'g'.repeat(256), 'not a string of 256 characters'],
      ['a number', 42, 'not a number'],
      ['null', null, 'not a null'],
      ['an object', { id: 1 }, 'not a object'],
      ['a NUL character', 'a\u0000b', 'not a string with NUL'],
      ['a lone surrogate', 'a\ud800', 'lone UTF-16 surrogate'],
    ])('refuses a group that is %s, naming the option, the limit and what it got; nothing is stored', async (_what, group, got) => {
      for (const attempt of [
        () => queue.add('bad-group', 'x', {}, { group } as never),
        () => queue.addBulk([{ queue: 'bad-group', name: 'x', data: {} }, { queue: 'bad-group', name: 'x', data: {}, options: { group } as never }]),
      ]) {
        const error = await attempt().catch((e: unknown) => e);
        expect(error).toBeInstanceOf(InvalidJobOptionError);
        expect((error as InvalidJobOptionError).option).toBe('group');
        expect((error as Error).message).toContain('a non-empty string of at most 255 characters');
        expect((error as Error).message).toContain(got);
      }
      expect(await queue.getCounts('bad-group')).toMatchObject({ pending: 0 });
    });
  });
});

/** Resolves once the declarations of `queue` have been renewed `times` times (their lease moved on). */
async function waitRenewals(queue: string, times: number): Promise<true> {
  const read = async () => {
    const [row] = await sql<{ until: number }>(
      `SELECT max((w.value ->> 'until')::float8) AS until FROM "${schema}".queue_jobs_queues, jsonb_each(declarations -> 'workers') AS w WHERE name = $1`,
      [queue],
    );
    return Number(row?.until ?? 0);
  };
  let last = await read();
  for (let seen = 0; seen < times; ) {
    const now = await waitFor(`a renewal of ${queue}'s declarations`, async () => {
      const until = await read();
      return until > last ? until : 0;
    }, 10_000);
    last = now;
    seen++;
  }
  return true;
}
