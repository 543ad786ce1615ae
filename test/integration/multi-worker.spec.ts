import type { INestApplicationContext } from '@nestjs/common';
import { Handle, JobState, Processor, QueueService, type Job } from '../../lib';
import { createTestApp } from './helpers/app';
import { dropSchema, sql, uniqueSchema } from './helpers/database';
import { waitFor } from './helpers/wait-for';

const schema = uniqueSchema('multi');
const JOBS = 2000;
/** Executions per job id across both apps (they share this process, but not pools or workers). */
const runs = new Map<string, number>();
const ranOn = new Map<string, Set<string>>();

function makeProcessor(appName: string) {
  @Processor('shared', { concurrency: 20 })
  class SharedProcessor {
    @Handle('work')
    async work(job: Job<{ i: number }>) {
      runs.set(job.id, (runs.get(job.id) ?? 0) + 1);
      if (!ranOn.has(appName)) ranOn.set(appName, new Set());
      ranOn.get(appName)!.add(job.id);
      // Yield so the two workers genuinely interleave.
      await new Promise((r) => setImmediate(r));
      return job.data.i;
    }
  }
  return SharedProcessor;
}

describe('two worker apps with their own pools share one queue', () => {
  let producer: INestApplicationContext;
  const workers: INestApplicationContext[] = [];

  beforeAll(async () => {
    producer = await createTestApp({ schema, queue: { worker: false } });
  });

  afterAll(async () => {
    await Promise.all(workers.map((w) => w.close()));
    await producer?.close();
    await dropSchema(schema);
  });

  it(`runs each of ${JOBS} jobs exactly once`, async () => {
    const queue = producer.get(QueueService);
    const jobs = await queue.addBulk(Array.from({ length: JOBS }, (_, i) => ({ queue: 'shared', name: 'work', data: { i } })));
    expect(jobs).toHaveLength(JOBS);
    workers.push(
      ...(await Promise.all(
        ['a', 'b'].map((name) => createTestApp({ schema, providers: [makeProcessor(name)], queue: { worker: { pollIntervalMs: 50 } } })),
      )),
    );
    await waitFor('all jobs completed', async () => (await queue.getCounts('shared')).completed === JOBS, 60_000);

    expect(runs.size).toBe(JOBS);
    const duplicates = [...runs].filter(([, n]) => n !== 1);
    expect(duplicates).toEqual([]);
    // Both workers took part (otherwise this would not test concurrent claiming).
    expect(ranOn.get('a')?.size).toBeGreaterThan(0);
    expect(ranOn.get('b')?.size).toBeGreaterThan(0);
    const rows = await sql<{ state: string; attempts: number; n: number }>(
      `SELECT state, attempts, count(*)::int AS n FROM "${schema}".queue_jobs GROUP BY state, attempts`,
    );
    expect(rows).toEqual([{ state: JobState.Completed, attempts: 1, n: JOBS }]);
    const wrong = await sql(`SELECT id FROM "${schema}".queue_jobs WHERE result <> to_jsonb((data->>'i')::int)`);
    expect(wrong).toEqual([]);
  });
});
