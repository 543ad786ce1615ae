import type { INestApplicationContext } from '@nestjs/common';
import { Handle, Processor, QueueService, type ProcessorOptions } from '../../lib';
import { JobRepository } from '../../lib/database/job.repository';
import { ScheduleRepository } from '../../lib/database/schedule.repository';
import { StatsRepository } from '../../lib/database/stats.repository';
import { QueueWorker } from '../../lib/worker/worker.service';
import { createTestApp } from './helpers/app';
import { dropSchema, sql, uniqueSchema } from './helpers/database';
import { setLimits } from './helpers/limits';
import { waitFor } from './helpers/wait-for';

// The worker's boot: its steps run side by side, and the first claim of each queue is of the kind
// the registry said at boot (limited or plain). A wrong belief breaks no limit (the plain claim
// takes nothing from a limited queue), it only leaves the queue unclaimed until the idle probe's
// next poll: with a poll of a minute here, jobs that start within seconds were claimed by a first
// claim of the right kind.
const schema = uniqueSchema('boot');
const POLL_MS = 60_000;

function processorOf(queue: string, options: ProcessorOptions, onRun: () => Promise<void> | void) {
  @Processor(queue, options)
  class BootProcessor {
    @Handle() async run() {
      await onRun();
    }
  }
  return BootProcessor;
}

/** The most jobs of `queue` active at once, sampled from the database until `until` resolves. */
async function maxActive(queue: string, until: Promise<unknown>): Promise<number> {
  let done = false;
  let max = 0;
  void until.finally(() => (done = true));
  while (!done) {
    const [row] = await sql<{ n: number }>(`SELECT count(*)::int AS n FROM "${schema}".queue_jobs WHERE queue = $1 AND state = 'active'`, [queue]);
    max = Math.max(max, row.n);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  return max;
}

describe('worker boot', () => {
  const apps: INestApplicationContext[] = [];
  let queue: QueueService;

  const bootWorker = async (providers: Function[], retentionMs?: number) => {
    const app = await createTestApp({ schema, providers: providers as never, queue: { retentionMs, worker: { pollIntervalMs: POLL_MS } } });
    apps.push(app);
    return app;
  };
  const completed = (name: string, count: number) =>
    waitFor(`${count} jobs of ${name} completed`, async () => {
      const [row] = await sql<{ n: number }>(`SELECT count(*)::int AS n FROM "${schema}".queue_jobs WHERE queue = $1 AND state = 'completed'`, [name]);
      return row.n === count || undefined;
    }, 10_000);

  beforeAll(async () => {
    const producer = await createTestApp({ schema, queue: { worker: false } });
    apps.push(producer);
    queue = producer.get(QueueService);
  });
  afterEach(() => jest.restoreAllMocks());
  afterAll(async () => {
    for (const app of apps.reverse()) await app.close();
    await dropSchema(schema);
  });

  it('claims a queue limited at runtime before the boot with the limited claim from the first claim, within its limit', async () => {
    await setLimits(schema, 'runtime-limited', { globalConcurrency: 2 });
    await queue.addBulk(Array.from({ length: 8 }, (_, i) => ({ queue: 'runtime-limited', name: 'job', data: { i } })));
    const limited = jest.spyOn(JobRepository.prototype, 'claimLimited');
    const plain = jest.spyOn(JobRepository.prototype, 'claim');
    await bootWorker([processorOf('runtime-limited', { concurrency: 5 }, () => new Promise((resolve) => setTimeout(resolve, 30)))]);
    const done = completed('runtime-limited', 8);
    expect(await maxActive('runtime-limited', done)).toBe(2);
    await done;
    expect(limited).toHaveBeenCalled();
    expect(plain).not.toHaveBeenCalled();
  });

  it('claims a queue whose processor declares a limit with the limited claim from the first claim', async () => {
    await queue.addBulk(Array.from({ length: 6 }, (_, i) => ({ queue: 'declared-limited', name: 'job', data: { i } })));
    const plain = jest.spyOn(JobRepository.prototype, 'claim');
    await bootWorker([processorOf('declared-limited', { concurrency: 5, globalConcurrency: 1 }, () => new Promise((resolve) => setTimeout(resolve, 20)))]);
    const done = completed('declared-limited', 6);
    expect(await maxActive('declared-limited', done)).toBe(1);
    await done;
    expect(plain).not.toHaveBeenCalled();
  });

  it('claims a queue without limits with the plain claim only (no limited claim at boot)', async () => {
    await queue.addBulk(Array.from({ length: 50 }, (_, i) => ({ queue: 'unlimited', name: 'job', data: { i } })));
    const limited = jest.spyOn(JobRepository.prototype, 'claimLimited');
    const plain = jest.spyOn(JobRepository.prototype, 'claim');
    await bootWorker([processorOf('unlimited', { concurrency: 10 }, () => undefined)]);
    await completed('unlimited', 50);
    expect(plain).toHaveBeenCalled();
    expect(limited).not.toHaveBeenCalled();
  });

  it('runs the maintenance of the boot (rescue, retention, rollup pruning, schedules) after the first claim is back, one at a time', async () => {
    await queue.addBulk(Array.from({ length: 20 }, (_, i) => ({ queue: 'maintained', name: 'job', data: { i } })));
    const calls: { what: string; start: number; end?: number }[] = [];
    const timed = <T extends object>(proto: T, method: keyof T & string, what: string) => {
      const original = proto[method] as unknown as (...args: unknown[]) => Promise<unknown>;
      jest.spyOn(proto, method as never).mockImplementation(async function (this: unknown, ...args: unknown[]) {
        const call: { what: string; start: number; end?: number } = { what, start: performance.now() };
        calls.push(call);
        try {
          return await original.apply(this, args);
        } finally {
          call.end = performance.now();
        }
      } as never);
    };
    timed(JobRepository.prototype, 'claim', 'claim');
    timed(JobRepository.prototype, 'rescueExpired', 'rescue');
    timed(JobRepository.prototype, 'deleteFinished', 'retention');
    timed(StatsRepository.prototype, 'prune', 'stats');
    timed(ScheduleRepository.prototype, 'nextDueInMs', 'schedules');
    await bootWorker([processorOf('maintained', { concurrency: 5 }, () => undefined)], 60 * 60 * 1000);
    await completed('maintained', 20);
    const first = (what: string) => calls.find((c) => c.what === what);
    await waitFor('the schedules\' first look', async () => first('schedules')?.end !== undefined || undefined, 10_000);
    const order = ['claim', 'rescue', 'retention', 'stats', 'schedules'].map((what) => ({ what, call: first(what)! }));
    for (let i = 1; i < order.length; i++) {
      // Each starts once the one before it is done (the first claim first).
      expect({ [order[i].what]: order[i].call.start >= order[i - 1].call.end! }).toEqual({ [order[i].what]: true });
    }
  });

  it('runs none of the maintenance of the boot when it stops before its first claim is back', async () => {
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    const claimed = jest.fn();
    jest.spyOn(JobRepository.prototype, 'claim').mockImplementation(async () => {
      claimed();
      await held;
      return [];
    });
    const rescue = jest.spyOn(JobRepository.prototype, 'rescueExpired');
    const schedules = jest.spyOn(ScheduleRepository.prototype, 'nextDueInMs');
    const app = await bootWorker([processorOf('stopped-early', { concurrency: 1 }, () => undefined)]);
    try {
      await waitFor('the first claim sent', async () => claimed.mock.calls.length > 0 || undefined, 10_000);
      // NOTE: the worker's own stop (as the app's shutdown calls it), so the claim comes back while it stops.
      const stopping = app.get(QueueWorker).stop();
      release();
      await stopping;
    } finally {
      release();
    }
    expect(rescue).not.toHaveBeenCalled();
    expect(schedules).not.toHaveBeenCalled();
  });

  it('gives every queue of the worker its registry row before the first claim, limits declared or not', async () => {
    const original = JobRepository.prototype.claim;
    let seen: string[] | undefined;
    jest.spyOn(JobRepository.prototype, 'claim').mockImplementation(async function (this: JobRepository, ...args: Parameters<JobRepository['claim']>) {
      seen ??= (await sql<{ name: string }>(`SELECT name FROM "${schema}".queue_jobs_queues WHERE name = ANY($1::text[]) ORDER BY name`, [['no-limits-a', 'no-limits-b']])).map((r) => r.name);
      return original.apply(this, args);
    });
    await bootWorker([processorOf('no-limits-a', { concurrency: 1 }, () => undefined), processorOf('no-limits-b', { concurrency: 1 }, () => undefined)]);
    await waitFor('a first claim', async () => seen !== undefined || undefined, 10_000);
    expect(seen).toEqual(['no-limits-a', 'no-limits-b']);
    const infos = (await queue.getQueues()).filter((q) => q.name.startsWith('no-limits-'));
    expect(infos.map((q) => [q.name, q.declared])).toEqual([['no-limits-a', {}], ['no-limits-b', {}]]);
  });

  it('is listed, listening and has declared its limits once the app has booted', async () => {
    const app = await bootWorker([processorOf('listed', { concurrency: 3, rateLimit: { max: 10, perMs: 1000 } }, () => undefined)]);
    const workers = await queue.getWorkers();
    expect(workers.some((w) => w.queues.listed === 3)).toBe(true);
    const info = (await queue.getQueues()).find((q) => q.name === 'listed');
    expect(info?.declared).toEqual({ rateLimit: { max: 10, perMs: 1000 } });
    // LISTEN is up: an add heard by notification starts the job long before the minute's poll.
    await queue.add('listed', 'job', {});
    await completed('listed', 1);
    await app.close();
    apps.splice(apps.indexOf(app), 1);
  });
});
