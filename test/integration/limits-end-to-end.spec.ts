import type { INestApplicationContext } from '@nestjs/common';
import { Handle, Processor, QueueService, type ActiveJob } from '../../lib';
import { createTestApp } from './helpers/app';
import { dropSchema, sql, uniqueSchema } from './helpers/database';
import { sampleLimits } from './helpers/limits';
import { waitFor } from './helpers/wait-for';

// The whole path of a limit: declared on @Processor (or set with updateQueue), written to the
// registry by the worker, enforced by the claim, with the `group` job option, across two worker apps.
const schema = uniqueSchema('limits_e2e');
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
/** Per group, the handler's own record of each run's start and end, in start order. */
const runsByGroup = new Map<string, { start: number; end: number }[]>();

@Processor('e2e-global', { concurrency: 10, globalConcurrency: 3 })
class GlobalProcessor {
  @Handle()
  async run(job: ActiveJob<{ ms: number }>) {
    await sleep(job.data.ms);
  }
}

@Processor('e2e-groups', { concurrency: 10, groupConcurrency: 1 })
class GroupsProcessor {
  @Handle()
  async run(job: ActiveJob<{ ms: number }>) {
    const start = Date.now();
    await sleep(job.data.ms);
    const list = runsByGroup.get(job.group!) ?? [];
    list.push({ start, end: Date.now() });
    runsByGroup.set(job.group!, list);
  }
}

describe('limits from the processor options to the claim', () => {
  const apps: INestApplicationContext[] = [];
  let queue: QueueService;
  const completed = async (q: string) =>
    (await sql<{ n: number }>(`SELECT count(*)::int AS n FROM "${schema}".queue_jobs WHERE queue = $1 AND state = 'completed'`, [q]))[0].n;

  beforeAll(async () => {
    for (let i = 0; i < 2; i++) {
      apps.push(await createTestApp({ schema, providers: [GlobalProcessor, GroupsProcessor], queue: { worker: { pollIntervalMs: 50 } } }));
    }
    queue = apps[0].get(QueueService);
  });
  afterAll(async () => {
    for (const app of apps) await app.close();
    await dropSchema(schema);
  });

  it('globalConcurrency declared in code holds across two workers of 10 slots each; updateQueue lowers it at runtime', async () => {
    const info = (await queue.getQueues()).find((q) => q.name === 'e2e-global');
    expect(info?.limits.globalConcurrency).toEqual({ value: 3, source: 'code' });
    const sampler = sampleLimits(schema, 'e2e-global');
    await queue.addBulk(Array.from({ length: 30 }, () => ({ queue: 'e2e-global', name: 'run', data: { ms: 60 } })));
    await waitFor('30 jobs to complete', async () => (await completed('e2e-global')) === 30, 30_000, 50);
    const first = await sampler.stop();
    expect(first.maxActive).toBeLessThanOrEqual(3);
    expect(first.maxActive).toBeGreaterThanOrEqual(2);

    await queue.updateQueue('e2e-global', { globalConcurrency: 1 });
    const second = sampleLimits(schema, 'e2e-global');
    await queue.addBulk(Array.from({ length: 10 }, () => ({ queue: 'e2e-global', name: 'run', data: { ms: 40 } })));
    await waitFor('10 more jobs to complete', async () => (await completed('e2e-global')) === 40, 30_000, 50);
    expect((await second.stop()).maxActive).toBe(1);
    await queue.updateQueue('e2e-global', { globalConcurrency: null });
    expect((await queue.getQueues()).find((q) => q.name === 'e2e-global')?.limits.globalConcurrency).toEqual({ value: 3, source: 'code' });
  });

  it('groupConcurrency: 1 with the group option: each group runs one job at a time, groups in parallel', async () => {
    const groups = ['tenant:a', 'tenant:b', 'tenant:c', 'tenant:d'];
    const sampler = sampleLimits(schema, 'e2e-groups');
    for (const group of groups) {
      for (let i = 0; i < 5; i++) await queue.add('e2e-groups', 'run', { ms: 30 }, { group });
    }
    await waitFor('20 grouped jobs to complete', async () => (await completed('e2e-groups')) === 20, 30_000, 50);
    const seen = await sampler.stop();
    expect(seen.maxPerGroup).toBe(1);
    expect(seen.maxActive).toBeGreaterThan(1);
    for (const group of groups) {
      const runs = runsByGroup.get(group)!;
      expect(runs).toHaveLength(5);
      for (let i = 1; i < runs.length; i++) expect(runs[i].start).toBeGreaterThanOrEqual(runs[i - 1].end);
    }
  });
});
