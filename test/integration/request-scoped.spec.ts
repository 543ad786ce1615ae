import { Inject, Injectable, Scope, type INestApplicationContext } from '@nestjs/common';
import { REQUEST } from '@nestjs/core';
import { Handle, JobState, Processor, QueueService, type ActiveJob } from '../../lib';
import { createTestApp } from './helpers/app';
import { dropSchema, uniqueSchema } from './helpers/database';
import { waitForJobState } from './helpers/jobs';

// A processor that injects a request-scoped provider is request-scoped itself: it gets a fresh
// instance per job, in a DI context of its own, where REQUEST is the job.
const schema = uniqueSchema('scoped');

let constructed = 0;

@Injectable({ scope: Scope.REQUEST })
class JobContext {
  readonly instance = ++constructed;
  constructor(@Inject(REQUEST) readonly job: ActiveJob<{ n: number }>) {}
}

@Injectable()
class Greeter {
  greet(n: number) {
    return `hello ${n}`;
  }
}

@Processor('scoped', { concurrency: 4 })
class ScopedProcessor {
  constructor(
    private readonly context: JobContext,
    private readonly greeter: Greeter,
  ) {}

  @Handle('greet')
  greet(job: ActiveJob<{ n: number }>) {
    return { greeting: this.greeter.greet(job.data.n), sameJob: this.context.job.id === job.id, instance: this.context.instance };
  }
}

describe('request-scoped processors', () => {
  let app: INestApplicationContext;

  beforeAll(async () => {
    app = await createTestApp({ schema, providers: [JobContext, Greeter, ScopedProcessor], queue: { worker: { pollIntervalMs: 50 } } });
  });
  afterAll(async () => {
    await app?.close();
    await dropSchema(schema);
  });

  it('run with their dependencies resolved, one instance per job, REQUEST being the job', async () => {
    const queue = app.get(QueueService);
    const jobs = await Promise.all([1, 2, 3].map((n) => queue.add('scoped', 'greet', { n })));
    const done = await Promise.all(jobs.map((job) => waitForJobState(queue, job.id, JobState.Completed)));
    expect(done.map((job) => (job.result as { greeting: string }).greeting)).toEqual(['hello 1', 'hello 2', 'hello 3']);
    expect(done.every((job) => (job.result as { sameJob: boolean }).sameJob)).toBe(true);
    expect(new Set(done.map((job) => (job.result as { instance: number }).instance)).size).toBe(3);
  });
});
