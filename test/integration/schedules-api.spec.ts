import type { INestApplicationContext } from '@nestjs/common';
import {
  DuplicateScheduleError,
  Handle,
  InvalidJobOptionError,
  InvalidModuleOptionsError,
  Processor,
  QueueService,
  Schedule,
  ScheduleNotFoundError,
} from '../../lib';
import type { DataSource } from 'typeorm';
import { createTestApp, createTestDataSource } from './helpers/app';
import { dropSchema, sql, uniqueSchema } from './helpers/database';

// The runtime schedule API from a producer-only process (worker: false), and every bad input
// refused with a typed error naming it: at the call, or (declared in code) at boot.
const schema = uniqueSchema('schedapi');

let dataSource: DataSource;

/** The error a boot with these providers fails with (on a DataSource of the test's: a failed boot leaves no pool open). */
async function bootError(providers: unknown[]): Promise<unknown> {
  try {
    const app = await createTestApp({ schema, dataSource, providers: providers as never, queue: { worker: { pollIntervalMs: 60_000 } } });
    await app.close();
  } catch (error) {
    return error;
  }
  throw new Error('the app booted');
}

async function rejection(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    return error as Error;
  }
  throw new Error('resolved');
}

describe('schedules: runtime API (worker: false) and bad input', () => {
  let app: INestApplicationContext;
  let queue: QueueService;
  beforeAll(async () => {
    app = await createTestApp({ schema, queue: { worker: false } });
    queue = app.get(QueueService);
    dataSource = await createTestDataSource();
  });
  afterAll(async () => {
    await app?.close();
    await dataSource?.destroy();
    await dropSchema(schema);
  });

  it('schedule, getSchedules, pause, resume, trigger, unschedule; visible with SQL', async () => {
    const [{ now }] = await sql<{ now: Date }>('SELECT now()');
    const created = await queue.schedule('digest:user-42', {
      queue: 'email', name: 'digest', cron: '0 8 * * MON', tz: 'America/New_York',
      data: { userId: 42 }, options: { maxAttempts: 5, priority: 3 }, catchUp: 'latest', overlap: 'skip',
    });
    expect(created).toMatchObject({
      key: 'digest:user-42', queue: 'email', name: 'digest', cron: '0 8 * * MON', tz: 'America/New_York', data: { userId: 42 },
      options: { maxAttempts: 5, priority: 3 }, catchUp: 'latest', catchUpLimit: 100, overlap: 'skip', paused: false, source: 'runtime',
      lastRunAt: null, lastJobId: null,
    });
    // The next Monday, 08:00 in New York, after now.
    expect(created.nextRunAt.getTime()).toBeGreaterThan(now.getTime());
    expect(created.nextRunAt.getTime() - now.getTime()).toBeLessThanOrEqual(7 * 24 * 3600_000);
    const local = new Intl.DateTimeFormat('en-US', { timeZone: 'America/New_York', weekday: 'short', hour: '2-digit', minute: '2-digit', hour12: false }).format(created.nextRunAt);
    expect(local).toBe('Mon 08:00');
    const [row] = await sql<{ key: string; source: string }>(`SELECT key, source FROM "${schema}".queue_jobs_schedules`);
    expect(row).toEqual({ key: 'digest:user-42', source: 'runtime' });

    // Changing data keeps the next run; changing the expression moves it.
    const sameCron = await queue.schedule('digest:user-42', { queue: 'email', name: 'digest', cron: '0 8 * * MON', tz: 'America/New_York', data: { userId: 43 } });
    expect(sameCron.nextRunAt).toEqual(created.nextRunAt);
    expect(sameCron).toMatchObject({ data: { userId: 43 }, catchUp: 'latest', overlap: 'allow', options: {} });
    const moved = await queue.schedule('digest:user-42', { queue: 'email', name: 'digest', cron: '0 9 * * *', tz: 'America/New_York', data: { userId: 43 } });
    expect(moved.nextRunAt).not.toEqual(created.nextRunAt);

    expect((await queue.pauseSchedule('digest:user-42')).paused).toBe(true);
    expect((await queue.resumeSchedule('digest:user-42')).paused).toBe(false);

    // A run now, outside the cron: an ordinary job that knows its schedule and slot.
    const job = await queue.triggerSchedule('digest:user-42');
    expect(job).toMatchObject({ queue: 'email', name: 'digest', data: { userId: 43 }, state: 'pending', scheduleKey: 'digest:user-42' });
    expect(job.scheduledFor).toBeInstanceOf(Date);
    const fetched = await queue.getJob(job.id);
    expect(fetched).toMatchObject({ scheduleKey: 'digest:user-42', scheduledFor: job.scheduledFor });
    const plain = await queue.add('email', 'x', {});
    expect(plain).toMatchObject({ scheduleKey: null, scheduledFor: null });
    expect(await queue.getJob(plain.id)).toMatchObject({ scheduleKey: null, scheduledFor: null });
    const [listed] = await queue.getSchedules();
    expect(listed).toMatchObject({ key: 'digest:user-42', lastJobId: job.id, lastRunAt: job.scheduledFor });

    expect(await queue.unschedule('digest:user-42')).toBe(true);
    expect(await queue.unschedule('digest:user-42')).toBe(false);
    expect(await queue.getSchedules()).toEqual([]);
    // Its job stays.
    expect((await queue.getJob(job.id))?.state).toBe('pending');
  });

  it('a schedule for a queue no processor handles anywhere is allowed (another service may own it)', async () => {
    const s = await queue.schedule('nobody-home', { queue: 'unhandled-anywhere', name: 'x', cron: '@daily' });
    expect(s.source).toBe('runtime');
    await queue.unschedule('nobody-home');
  });

  const spec = { queue: 'q', name: 'n', cron: '* * * * *' };
  it.each([
    ['cron', { ...spec, cron: 'every day' }],
    ['cron', { ...spec, cron: '0 0 30 2 *' }],
    ['cron', { ...spec, cron: 42 }],
    ['tz', { ...spec, tz: 'Europe/Atlantis' }],
    ['catchUpLimit', { ...spec, catchUp: 'all', catchUpLimit: 0 }],
    ['catchUpLimit', { ...spec, catchUpLimit: 1.5 }],
    ['catchUpLimit', { ...spec, catchUpLimit: '10' }],
    ['catchUp', { ...spec, catchUp: 'some' }],
    ['overlap', { ...spec, overlap: 'never' }],
    ['queue', { ...spec, queue: '' }],
    ['name', { ...spec, name: undefined }],
    ['options.maxAttempts', { ...spec, options: { maxAttempts: 0 } }],
    ['options.runAt', { ...spec, options: { runAt: new Date() } }],
    ['timezone', { ...spec, timezone: 'UTC' }],
  ])('refuses a bad %s, naming it', async (option, bad) => {
    const error = await rejection(queue.schedule('k', bad as never));
    expect(error).toBeInstanceOf(InvalidJobOptionError);
    expect((error as InvalidJobOptionError).option).toBe(option);
    if (option === 'timezone') expect(error.message).toContain('did you mean tz?');
    expect(await queue.getSchedules()).toEqual([]);
  });

  it.each([[''], ['x'.repeat(256)], [' padded'], [42]])('refuses the key %j', async (key) => {
    for (const call of [
      () => queue.schedule(key as never, spec),
      () => queue.unschedule(key as never),
      () => queue.pauseSchedule(key as never),
      () => queue.triggerSchedule(key as never),
    ]) {
      const error = await rejection(call());
      expect(error).toBeInstanceOf(InvalidJobOptionError);
      expect((error as InvalidJobOptionError).option).toBe('key');
    }
  });

  it('unknown keys: ScheduleNotFoundError for pause, resume and trigger', async () => {
    for (const call of [() => queue.pauseSchedule('nope'), () => queue.resumeSchedule('nope'), () => queue.triggerSchedule('nope')]) {
      const error = await rejection(call());
      expect(error).toBeInstanceOf(ScheduleNotFoundError);
      expect(error.message).toContain('"nope"');
    }
  });

  describe('declared in code: bad declarations fail the boot', () => {
    it('an invalid expression or zone, naming the method', async () => {
      @Processor('boot-bad')
      class BadCron {
        @Handle('a')
        @Schedule('0 0 99 * *')
        a() {}
      }
      const error = await bootError([BadCron]);
      expect(error).toBeInstanceOf(InvalidModuleOptionsError);
      expect((error as Error).message).toContain('BadCron.a @Schedule cron');

      @Processor('boot-bad')
      class BadZone {
        @Handle('a')
        @Schedule('0 0 * * *', { tz: 'Moon/Base' })
        a() {}
      }
      const zoneError = await bootError([BadZone]);
      expect(zoneError).toBeInstanceOf(InvalidModuleOptionsError);
      expect((zoneError as Error).message).toContain('BadZone.a @Schedule tz');
    });

    it('duplicate keys, naming both methods', async () => {
      @Processor('boot-dup')
      class First {
        @Handle('a')
        @Schedule('0 * * * *', { key: 'shared' })
        a() {}
      }
      @Processor('boot-dup-2')
      class Second {
        @Handle('b')
        @Schedule('30 * * * *', { key: 'shared' })
        b() {}
      }
      const error = await bootError([First, Second]);
      expect(error).toBeInstanceOf(DuplicateScheduleError);
      expect((error as Error).message).toMatch(/"shared".*First\.a and Second\.b/);
    });

    it('a @Schedule on the catch-all handler, or without @Handle', async () => {
      @Processor('boot-catch-all')
      class CatchAll {
        @Handle()
        @Schedule('0 * * * *')
        any() {}
      }
      expect(((await bootError([CatchAll])) as Error).message).toContain('CatchAll.any @Schedule handler');

      @Processor('boot-no-handle')
      class NoHandle {
        @Schedule('0 * * * *')
        lonely() {}
      }
      expect(((await bootError([NoHandle])) as Error).message).toContain('NoHandle.lonely @Schedule');
    });

    it('an unknown option, with a suggestion; a bad catchUpLimit', async () => {
      @Processor('boot-opt')
      class Misspelt {
        @Handle('a')
        @Schedule('0 * * * *', { timeZone: 'UTC' } as never)
        a() {}
      }
      expect(((await bootError([Misspelt])) as Error).message).toMatch(/Misspelt\.a @Schedule timeZone.*did you mean tz\?/);
      @Processor('boot-opt')
      class Limit {
        @Handle('a')
        @Schedule('0 * * * *', { catchUp: 'all', catchUpLimit: -1 })
        a() {}
      }
      expect(((await bootError([Limit])) as Error).message).toContain('Limit.a @Schedule catchUpLimit');
    });
  });
});
