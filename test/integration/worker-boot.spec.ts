import type { INestApplicationContext } from '@nestjs/common';
import { Handle, Processor, QueueService, type ProcessorOptions } from '../../lib';
import { JobRepository } from '../../lib/database/job.repository';
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

  const bootWorker = async (providers: Function[]) => {
    const app = await createTestApp({ schema, providers: providers as never, queue: { worker: { pollIntervalMs: POLL_MS } } });
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
