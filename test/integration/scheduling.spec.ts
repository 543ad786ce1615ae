import type { INestApplicationContext } from '@nestjs/common';
import { Handle, JobState, Processor, QueueService, type Job } from '../../lib';
import { createTestApp } from './helpers/app';
import { dropSchema, uniqueSchema } from './helpers/database';
import { waitFor } from './helpers/wait-for';

const schema = uniqueSchema('sched');
const order: number[] = [];
let running = 0;
let peak = 0;

@Processor('prio', { concurrency: 1 })
class PriorityProcessor {
  @Handle('p')
  p(job: Job<{ p: number }>) {
    order.push(job.data.p);
  }
}

@Processor('limited', { concurrency: 3 })
class LimitedProcessor {
  @Handle('slow')
  async slow() {
    running++;
    peak = Math.max(peak, running);
    await new Promise((r) => setTimeout(r, 30));
    running--;
  }
}

describe('priorities, concurrency and producer-only processes', () => {
  let producer: INestApplicationContext;
  let worker: INestApplicationContext | undefined;
  let queue: QueueService;

  beforeAll(async () => {
    producer = await createTestApp({ schema, providers: [PriorityProcessor, LimitedProcessor], queue: { worker: false } });
    queue = producer.get(QueueService);
  });

  afterAll(async () => {
    await worker?.close();
    await producer?.close();
    await dropSchema(schema);
  });

  it('a worker: false process enqueues but processes nothing, even with processors registered', async () => {
    const job = await queue.add('prio', 'p', { p: -1 }, { priority: -100 });
    // Give a would-be worker ample chances (several of its poll intervals) before checking.
    await new Promise((r) => setTimeout(r, 300));
    expect((await queue.getJob(job.id))?.state).toBe(JobState.Pending);
    expect(order).toEqual([]);
  });

  it('runs higher priorities first, then by due time and insertion order', async () => {
    await queue.addBulk([
      { queue: 'prio', name: 'p', data: { p: 0 } },
      { queue: 'prio', name: 'p', data: { p: 10 }, options: { priority: 10 } },
      { queue: 'prio', name: 'p', data: { p: 5 }, options: { priority: 5 } },
      { queue: 'prio', name: 'p', data: { p: 1 }, options: { priority: 0 } },
      { queue: 'prio', name: 'p', data: { p: 10.5 }, options: { priority: 10 } },
    ]);
    await Promise.all(
      Array.from({ length: 20 }, (_, i) => queue.add('limited', 'slow', { i })),
    );
    worker = await createTestApp({ schema, providers: [PriorityProcessor, LimitedProcessor], queue: { worker: { pollIntervalMs: 50 } } });
    const workerQueue = worker.get(QueueService);
    await waitFor('prio drained', async () => (await workerQueue.getCounts('prio')).completed === 6);
    expect(order).toEqual([10, 10.5, 5, 0, 1, -1]);
    await waitFor('limited drained', async () => (await workerQueue.getCounts('limited')).completed === 20);
    expect(peak).toBe(3);
  });
});
