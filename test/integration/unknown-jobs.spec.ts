import type { INestApplicationContext } from '@nestjs/common';
import { Handle, JobState, MissingHandlerError, Processor, QueueService, type Job } from '../../lib';
import { createTestApp } from './helpers/app';
import { dropSchema, uniqueSchema } from './helpers/database';
import { waitForJobState } from './helpers/jobs';
import { waitFor } from './helpers/wait-for';

/**
 * Rolling deploys: a worker that claims a job name it has no handler for (only the new version
 * knows it) hands the job back without counting an attempt, and fails it with MissingHandlerError
 * only once it has been unknown for `worker.unknownJobGraceMs`. `0` fails it at once.
 */
const schema = uniqueSchema('unknown');

function oldVersion(queue: string) {
  @Processor(queue)
  class OldProcessor {
    @Handle('known')
    known() {
      return 'old';
    }
  }
  return OldProcessor;
}

function newVersion(queue: string) {
  @Processor(queue)
  class NewProcessor {
    @Handle('known')
    known() {
      return 'new';
    }
    @Handle('brand-new')
    brandNew(job: Job) {
      return `ran by the new version at attempt ${job.attempts}`;
    }
  }
  return NewProcessor;
}

describe('jobs whose name this worker does not know', () => {
  const apps: INestApplicationContext[] = [];
  const boot = async (queue: string, processor: new () => unknown, unknownJobGraceMs: number) => {
    const app = await createTestApp({ schema, providers: [processor], queue: { worker: { pollIntervalMs: 50, unknownJobGraceMs } } });
    apps.push(app);
    return app.get(QueueService);
  };

  afterAll(async () => {
    for (const app of apps) await app.close();
    await dropSchema(schema);
  });

  it('with a grace of 0, fails at once with MissingHandlerError', async () => {
    const queue = await boot('unk_zero', oldVersion('unk_zero'), 0);
    const job = await queue.add('unk_zero', 'brand-new', {});
    const failed = await waitForJobState(queue, job.id, JobState.Failed);
    expect(failed.attempts).toBe(1);
    expect(failed.lastError?.name).toBe(MissingHandlerError.name);
  });

  it('within the grace, hands the job back uncounted, and a worker that knows the name runs it', async () => {
    const queue = await boot('unk_grace', oldVersion('unk_grace'), 60_000);
    const oldApp = apps[apps.length - 1];
    const job = await queue.add('unk_grace', 'brand-new', {});
    const handedBack = await waitFor('the job to be handed back', async () => {
      const j = await queue.getJob(job.id);
      return j && j.claims >= 1 && j.state === JobState.Pending ? j : undefined;
    });
    expect(handedBack.attempts).toBe(0);
    expect(handedBack.lastError?.name).toBe(MissingHandlerError.name);
    expect(handedBack.runAt.getTime()).toBeGreaterThan(Date.now() - 1000);
    const upgraded = await boot('unk_grace', newVersion('unk_grace'), 60_000);
    // The rolling deploy ends: the old version stops (until then either version may claim it).
    await apps.splice(apps.indexOf(oldApp), 1)[0].close();
    const done = await waitForJobState(upgraded, job.id, JobState.Completed, 20_000);
    expect(done.attempts).toBe(1);
    expect(done.result).toBe('ran by the new version at attempt 1');
  });

  it('after the grace, fails it with MissingHandlerError', async () => {
    const GRACE = 1000;
    const queue = await boot('unk_late', oldVersion('unk_late'), GRACE);
    const job = await queue.add('unk_late', 'brand-new', {});
    const failed = await waitForJobState(queue, job.id, JobState.Failed, 20_000);
    expect(failed.lastError?.name).toBe(MissingHandlerError.name);
    expect(failed.claims).toBeGreaterThanOrEqual(2);
    expect(failed.attempts).toBe(1);
    expect(failed.finishedAt!.getTime() - failed.createdAt.getTime()).toBeGreaterThanOrEqual(GRACE);
  });
});
