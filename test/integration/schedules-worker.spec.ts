import type { INestApplicationContext } from '@nestjs/common';
import { Handle, Processor, QueueService, Schedule, type ActiveJob } from '../../lib';
import { QueueDatabase } from '../../lib/database/queue-database';
import { ScheduleRepository } from '../../lib/database/schedule.repository';
import { ScheduleEnqueuer } from '../../lib/worker/maintenance/schedule-enqueuer';
import { createTestApp } from './helpers/app';
import { dropSchema, sql, uniqueSchema } from './helpers/database';
import { CapturingLogger } from './helpers/log-capture';
import { waitFor } from './helpers/wait-for';

// Schedules run by in-process workers: catch-up after every worker was down, overlap 'skip', the
// reconciliation of code-declared schedules across reboots, and two app versions at once.
const schema = uniqueSchema('schedwork');
const T = `"${schema}".queue_jobs`;

interface SlotRow {
  key: string;
  slot: number;
  created: number;
  started: number | null;
  finished: number | null;
  state: string;
}
/** The jobs of the schedules `keys`, by slot (epoch ms from the database). */
const slotJobs = (keys: string[]) =>
  sql<SlotRow>(
    `SELECT schedule_key AS key, floor(extract(epoch FROM scheduled_for) * 1000)::float8 AS slot, floor(extract(epoch FROM created_at) * 1000)::float8 AS created,
       floor(extract(epoch FROM started_at) * 1000)::float8 AS started, floor(extract(epoch FROM finished_at) * 1000)::float8 AS finished, state
     FROM ${T} WHERE schedule_key = ANY($1) ORDER BY schedule_key, scheduled_for`,
    [keys],
  );
const dbNow = async () => Number((await sql<{ now: number }>('SELECT floor(extract(epoch FROM clock_timestamp()) * 1000)::float8 AS now'))[0].now);

/** What handlers saw of their job (the ActiveJob's schedule fields). */
const seen: { id: string; scheduleKey: string | null; scheduledFor: Date | null }[] = [];

@Processor('catchup', { concurrency: 10 })
class CatchUpProcessor {
  @Handle('tick')
  tick(job: ActiveJob) {
    seen.push({ id: job.id, scheduleKey: job.scheduleKey, scheduledFor: job.scheduledFor });
  }
}

@Processor('overlap', { concurrency: 5 })
class SlowProcessor {
  @Handle('slow')
  async slow() {
    await new Promise((resolve) => setTimeout(resolve, 2500));
  }
}

describe('schedules run by workers', () => {
  const apps = new Set<INestApplicationContext>();
  let queue: QueueService;
  const boot = async (providers: unknown[], logger?: CapturingLogger, applicationName?: string) => {
    const app = await createTestApp({
      schema, providers: providers as never, logger, queue: { worker: { pollIntervalMs: 200 } }, typeorm: applicationName ? { applicationName } : undefined,
    });
    apps.add(app);
    return app;
  };
  const close = async (app: INestApplicationContext) => {
    apps.delete(app);
    await app.close();
  };

  beforeAll(async () => {
    const producer = await createTestApp({ schema, queue: { worker: false } });
    apps.add(producer);
    queue = producer.get(QueueService);
  });
  afterAll(async () => {
    for (const app of [...apps].reverse()) await app.close();
    await dropSchema(schema);
  });

  it("catch-up after every worker was stopped for 5 slots: 'none' skips them, 'latest' runs the latest once, 'all' runs each", async () => {
    const keys = ['cu-none', 'cu-latest', 'cu-all'];
    for (const [i, catchUp] of (['none', 'latest', 'all'] as const).entries()) {
      await queue.schedule(keys[i], { queue: 'catchup', name: 'tick', cron: '* * * * * *', catchUp, data: { catchUp } });
    }
    let worker = await boot([CatchUpProcessor]);
    await waitFor('2 slots of each schedule', async () => {
      const jobs = await slotJobs(keys);
      return keys.every((k) => jobs.filter((j) => j.key === k).length >= 2);
    });
    await close(worker);
    const before = await slotJobs(keys);
    const lastBefore = Object.fromEntries(keys.map((k) => [k, Math.max(...before.filter((j) => j.key === k).map((j) => j.slot))]));
    // Down for more than 5 slots (the database's clock): no worker, nothing enqueued.
    const down = await dbNow();
    await waitFor('6.5 s of downtime', async () => (await dbNow()) >= down + 6500, 10_000, 100);
    expect((await slotJobs(keys)).length).toBe(before.length);

    worker = await boot([CatchUpProcessor]);
    const bootedAt = await dbNow();
    await waitFor('the slots after the restart', async () => {
      const jobs = await slotJobs(keys);
      return keys.every((k) => jobs.some((j) => j.key === k && j.slot > bootedAt + 1000));
    });
    await close(worker);
    const jobs = await slotJobs(keys);
    // One job per slot, whatever else.
    expect(new Set(jobs.map((j) => `${j.key}@${j.slot}`)).size).toBe(jobs.length);
    for (const key of keys) {
      const after = jobs.filter((j) => j.key === key && j.slot > lastBefore[key]);
      // The first tick after the restart (its transaction's now() is every job's created_at).
      const firstTick = Math.min(...after.map((j) => j.created));
      // For a per-second schedule a slot more than a second late was missed (see planSlots).
      const missed = after.filter((j) => j.slot < firstTick - 1000);
      const gap = Math.floor((firstTick - 1000 - lastBefore[key]) / 1000); // slots missed: at least 5
      expect(gap).toBeGreaterThanOrEqual(5);
      if (key === 'cu-none') expect(missed).toEqual([]);
      if (key === 'cu-latest') {
        expect(missed).toHaveLength(1);
        expect(missed[0].slot).toBeGreaterThan(firstTick - 2000 - 1); // the latest missed one
      }
      if (key === 'cu-all') {
        expect(missed).toHaveLength(gap);
        // Every slot from before the stop to the end, none missing.
        const all = jobs.filter((j) => j.key === key).map((j) => j.slot);
        expect(all.every((slot, i) => i === 0 || slot - all[i - 1] === 1000)).toBe(true);
      }
      // From the restart on, every slot: on time.
      const onTime = after.filter((j) => j.slot >= firstTick - 1000).map((j) => j.slot);
      expect(onTime.every((slot, i) => i === 0 || slot - onTime[i - 1] === 1000)).toBe(true);
    }
    // Each run is an ordinary job that knew its schedule and slot.
    await waitFor('the handlers to have run', () => seen.length > 0);
    const ran = seen.find((s) => s.scheduleKey === 'cu-all')!;
    expect(ran.scheduledFor).toBeInstanceOf(Date);
    const [stored] = await sql<{ slot: Date }>(`SELECT scheduled_for AS slot FROM ${T} WHERE id = $1`, [ran.id]);
    expect(ran.scheduledFor).toEqual(stored.slot);
    for (const key of keys) await queue.unschedule(key);
  }, 60_000);

  it("overlap 'skip' with a handler slower than the interval: never two unfinished runs", async () => {
    await queue.schedule('slow', { queue: 'overlap', name: 'slow', cron: '* * * * * *', overlap: 'skip', catchUp: 'all' });
    const worker = await boot([SlowProcessor]);
    await waitFor('3 finished runs', async () => (await slotJobs(['slow'])).filter((j) => j.state === 'completed').length >= 3, 30_000, 100);
    await queue.pauseSchedule('slow');
    await close(worker);
    const jobs = await slotJobs(['slow']);
    // Each run was enqueued only after the previous one finished (concurrency 5 would allow more).
    for (let i = 1; i < jobs.length; i++) {
      expect(jobs[i - 1].finished).not.toBeNull();
      expect(jobs[i].created).toBeGreaterThanOrEqual(jobs[i - 1].finished!);
    }
    // Slots were skipped meanwhile (about one run per 2.5 s of per-second slots).
    expect(jobs[jobs.length - 1].slot - jobs[0].slot).toBeGreaterThan((jobs.length - 1) * 1000);
    await queue.unschedule('slow');
  }, 60_000);

  it('reconciliation: boot with A; reboot with A changed and B added; reboot without A. Runtime schedules and other queues untouched', async () => {
    @Processor('rec')
    class V1 {
      @Handle('a')
      @Schedule('0 0 * * *', { data: { v: 1 } })
      a() {}
    }
    @Processor('rec')
    class V2 {
      @Handle('a')
      @Schedule('0 12 * * *', { tz: 'Europe/Berlin', data: { v: 2 } })
      a() {}
      @Handle('b')
      @Schedule('@hourly', { key: 'rec-b' })
      b() {}
    }
    @Processor('rec')
    class V3 {
      @Handle('a')
      a() {}
      @Handle('b')
      @Schedule('@hourly', { key: 'rec-b' })
      b() {}
    }
    @Processor('rec-other')
    class OtherService {
      @Handle('o')
      @Schedule('0 3 * * *')
      o() {}
    }
    // Another service's code schedule, and a runtime schedule of the same queue.
    await close(await boot([OtherService]));
    const runtime = await queue.schedule('rec-runtime', { queue: 'rec', name: 'a', cron: '0 6 * * *' });
    const byKey = async () => Object.fromEntries((await queue.getSchedules()).map((s) => [s.key, s]));

    await close(await boot([V1]));
    let s = await byKey();
    expect(s['rec:a']).toMatchObject({ source: 'code', cron: '0 0 * * *', tz: 'UTC', data: { v: 1 }, declaredBy: 'V1.a' });
    const firstNext = s['rec:a'].nextRunAt;
    // A reboot of the same code changes nothing.
    await close(await boot([V1]));
    expect((await byKey())['rec:a'].updatedAt).toEqual(s['rec:a'].updatedAt);

    const logger = new CapturingLogger();
    await close(await boot([V2], logger));
    s = await byKey();
    expect(s['rec:a']).toMatchObject({ cron: '0 12 * * *', tz: 'Europe/Berlin', data: { v: 2 }, declaredBy: 'V2.a' });
    expect(s['rec:a'].nextRunAt).not.toEqual(firstNext);
    expect(new Intl.DateTimeFormat('en-GB', { timeZone: 'Europe/Berlin', hour: '2-digit', minute: '2-digit' }).format(s['rec:a'].nextRunAt)).toBe('12:00');
    expect(s['rec-b']).toMatchObject({ source: 'code', cron: '@hourly', queue: 'rec', name: 'b' });
    expect(logger.find('log', /Schedules reconciled: created "rec-b"; updated "rec:a"/)).toHaveLength(1);

    await close(await boot([V3]));
    s = await byKey();
    expect(s['rec:a']).toBeUndefined();
    expect(s['rec-b']).toBeDefined();
    // Never touched: the runtime schedule, the other service's schedule.
    expect(s['rec-runtime']).toEqual(runtime);
    expect(s['rec-other:o']).toMatchObject({ source: 'code', cron: '0 3 * * *' });

    // A runtime schedule cannot take a code key; a code key held by a runtime schedule is reported
    // at boot and left alone.
    await expect(queue.schedule('rec-b', { queue: 'rec', name: 'b', cron: '@daily' })).rejects.toThrow(/a key no @Schedule declared in code uses/);
    @Processor('rec')
    class Clash {
      @Handle('a')
      @Schedule('@daily', { key: 'rec-runtime' })
      a() {}
    }
    const clashLog = new CapturingLogger();
    await close(await boot([Clash], clashLog));
    expect(clashLog.find('warn', /"rec-runtime" of Clash\.a is not applied: a runtime schedule/)).toHaveLength(1);
    expect((await byKey())['rec-runtime']).toEqual(runtime);
    expect((await byKey())['rec-b']).toBeUndefined(); // not declared by Clash, which processes 'rec'
    await queue.unschedule('rec-runtime');
    // A code schedule of a processor no service runs any more can be unscheduled (no boot would
    // delete it); one still declared comes back at its next boot.
    expect(await queue.unschedule('rec-other:o')).toBe(true);
    await close(await boot([V3]));
    s = await byKey();
    expect(s['rec-other:o']).toBeUndefined();
    expect(s['rec-b']).toMatchObject({ source: 'code', declaredBy: 'V3.b' });
  }, 60_000);

  it('two app versions at once (a rolling deploy) with different data for one schedule: one job per slot', async () => {
    @Processor('deploy', { concurrency: 10 })
    class Old {
      @Handle('run')
      @Schedule('* * * * * *', { key: 'deploy', data: { v: 'old' }, catchUp: 'all' })
      run() {}
    }
    @Processor('deploy', { concurrency: 10 })
    class New {
      @Handle('run')
      @Schedule('* * * * * *', { key: 'deploy', data: { v: 'new' }, catchUp: 'all' })
      run() {}
    }
    // NOTE: booted at once: both reconcile the same key at the same time.
    const [old, fresh] = await Promise.all([boot([Old]), boot([New])]);
    const start = await dbNow();
    await waitFor('5 slots', async () => (await slotJobs(['deploy'])).filter((j) => j.slot > start).length >= 5, 20_000, 100);
    await close(old);
    await close(fresh);
    const jobs = await slotJobs(['deploy']);
    expect(new Set(jobs.map((j) => j.slot)).size).toBe(jobs.length);
    const slots = jobs.map((j) => j.slot);
    expect(slots.every((slot, i) => i === 0 || slot - slots[i - 1] === 1000)).toBe(true);
  }, 60_000);

  it("the worker's connections terminated twice while a per-second schedule runs: no slot is lost or doubled; a failed tick is logged and followed by a resumption", async () => {
    const logger = new CapturingLogger();
    const name = `${schema}-terminated`;
    const worker = await boot([CatchUpProcessor], logger, name);
    await queue.schedule('terminated', { queue: 'catchup', name: 'tick', cron: '* * * * * *', catchUp: 'all' });
    const first = await waitFor('the first slot', async () => (await slotJobs(['terminated']))[0]?.slot);
    // Terminate every connection of the worker's process, twice, a slot apart.
    for (let i = 0; i < 2; i++) {
      await waitFor('a slot more', async () => (await slotJobs(['terminated'])).some((j) => j.slot >= first + (i + 1) * 2000), 20_000, 50);
      const [{ n }] = await sql<{ n: number }>(`SELECT count(pg_terminate_backend(pid))::int AS n FROM pg_stat_activity WHERE application_name = $1`, [name]);
      expect(n).toBeGreaterThan(0);
    }
    await waitFor('8 s of slots', async () => (await slotJobs(['terminated'])).some((j) => j.slot >= first + 8000), 30_000, 100);
    await queue.pauseSchedule('terminated');
    await close(worker);
    const slots = (await slotJobs(['terminated'])).map((j) => j.slot).filter((slot) => slot <= first + 8000);
    expect(slots).toEqual(Array.from({ length: 9 }, (_, i) => first + i * 1000));
    // A tick that lost its connection is reported (once per outage) and the enqueuer goes on.
    const failed = logger.find('warn', /Schedule enqueuer failed/).length;
    const resumed = logger.find('log', /Schedule enqueuer resumed/).length;
    expect(resumed).toBe(failed);
    await queue.unschedule('terminated');
  }, 60_000);

  it("a long catch-up with 'all' is spread over ticks of a bounded number of slots; nothing is lost", async () => {
    // Three per-second schedules 30 s overdue (as after 30 s with no worker), straight in the table.
    const keys = ['bulk-1', 'bulk-2', 'bulk-3'];
    await sql(
      `INSERT INTO "${schema}".queue_jobs_schedules (key, queue, name, cron, next_run_at, catch_up, catch_up_limit, source)
       SELECT k, 'catchup-bulk', 'tick', '* * * * * *', date_trunc('second', now()) - interval '30 seconds', 'all', 1000, 'runtime' FROM unnest($1::text[]) AS k`,
      [keys],
    );
    // The enqueuer alone (no worker app), driven once, with ticks of at most 40 slots.
    const repository = await (await createTestApp({ schema, queue: { worker: false } }).then((app) => (apps.add(app), app))).get(QueueDatabase).getRepository();
    const enqueuer = new ScheduleEnqueuer(new ScheduleRepository(repository), 5000, 40);
    await enqueuer.runOnce();
    await enqueuer.stop();
    const jobs = await slotJobs(keys);
    for (const key of keys) {
      const slots = jobs.filter((j) => j.key === key).map((j) => j.slot);
      expect(slots.length).toBeGreaterThanOrEqual(31);
      expect(slots.every((slot, i) => i === 0 || slot - slots[i - 1] === 1000)).toBe(true);
    }
    // Schedule 1 (31+ slots) and 2 reach the bound in the first tick; 3 goes in a second one.
    const ticks = new Set(jobs.map((j) => j.created));
    expect(ticks.size).toBe(2);
    const byTick = (key: string) => new Set(jobs.filter((j) => j.key === key).map((j) => j.created));
    expect([...byTick('bulk-1')]).toEqual([...byTick('bulk-2')]);
    expect([...byTick('bulk-3')]).not.toEqual([...byTick('bulk-1')]);
    for (const key of keys) await queue.unschedule(key);
  }, 60_000);
});
