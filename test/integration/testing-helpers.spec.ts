import type { INestApplicationContext, LoggerService } from '@nestjs/common';
import { ActiveJob, Handle, InvalidJobOptionError, MissingHandlerError, Processor, QueueService } from '../../lib';
import { createQueueTester, DrainTimeoutError, JobExpectationError, type QueueTester } from '../../lib/testing';
import { createTestApp } from './helpers/app';
import { dropSchema, uniqueSchema } from './helpers/database';
import { waitFor } from './helpers/wait-for';

/** A handler error type the test can check by identity: run() must hand back the very object. */
class BadAddressError extends Error {}

const calls: string[] = [];

@Processor('email', { defaultJobOptions: { maxAttempts: 2, backoff: { type: 'fixed', delayMs: 0 } } })
class EmailProcessor {
  constructor(private readonly queue: QueueService) {}

  @Handle('welcome')
  async welcome(job: ActiveJob<{ to: string }>) {
    calls.push(`welcome ${job.data.to}`);
    if (job.data.to.endsWith('@invalid')) throw new BadAddressError(`cannot send to ${job.data.to}`);
    // A job that enqueues another: drain() runs that one too.
    await this.queue.add('email', 'receipt', { to: job.data.to });
    return { sent: job.data.to };
  }

  @Handle('receipt')
  receipt(job: ActiveJob<{ to: string }>) {
    calls.push(`receipt ${job.data.to}`);
    return { receipt: true };
  }

  /** Fails once, then succeeds: its retry (backoff 0) is due at once. */
  @Handle('flaky')
  flaky(job: ActiveJob) {
    if (job.attempts === 1) throw new Error('first attempt fails');
    return { attempt: job.attempts };
  }

  /** Enqueues itself again, forever. */
  @Handle('loop')
  async loop() {
    await this.queue.add('email', 'loop', {});
  }
}

@Processor('slow-retry', { defaultJobOptions: { maxAttempts: 3, backoff: { type: 'fixed', delayMs: 3_600_000 } } })
class SlowRetryProcessor {
  @Handle('fails')
  fails() {
    throw new Error('retried in an hour');
  }
}

describe('nestjs-pg-queue/testing: createQueueTester', () => {
  describe('with worker: false', () => {
    const schema = uniqueSchema('tester');
    let app: INestApplicationContext;
    let tester: QueueTester;
    let queue: QueueService;

    beforeAll(async () => {
      app = await createTestApp({ schema, providers: [EmailProcessor, SlowRetryProcessor], queue: { worker: false } });
      tester = createQueueTester(app);
      queue = app.get(QueueService);
    });
    afterEach(async () => {
      await tester.clear();
      calls.length = 0;
    });
    afterAll(async () => {
      await app?.close();
      await dropSchema(schema);
    });

    it('expectEnqueued matches data as a deep partial; enqueued returns the matches without asserting', async () => {
      await queue.add('email', 'welcome', { to: 'ada@example.com', locale: { lang: 'en', region: 'GB' } });
      await queue.add('email', 'welcome', { to: 'bob@example.com' });

      const [job] = await tester.expectEnqueued({ queue: 'email', name: 'welcome', data: { to: 'ada@example.com', locale: { lang: 'en' } } });
      expect(job).toMatchObject({ queue: 'email', name: 'welcome', state: 'pending' });
      expect(await tester.enqueued({ queue: 'email', name: 'welcome' })).toHaveLength(2);
      expect(await tester.enqueued({ data: { to: 'eve@example.com' } })).toEqual([]);
      expect(await tester.enqueued({ state: 'completed' })).toEqual([]);
      expect(calls).toEqual([]); // nothing ran: worker: false
    });

    it('expectEnqueued fails with a readable message listing the jobs that are there', async () => {
      await queue.add('email', 'welcome', { to: 'bob@example.com' });
      const failure = await tester.expectEnqueued({ queue: 'email', name: 'welcome', data: { to: 'ada@example.com' } }).catch((e) => e);
      expect(failure).toBeInstanceOf(JobExpectationError);
      expect(failure.message).toContain('Expected a job matching {"queue":"email","name":"welcome","data":{"to":"ada@example.com"}}');
      expect(failure.message).toMatch(/queue "email" has 1:\n {2}#\d+ email\/welcome pending \{"to":"bob@example.com"\}/);
    });

    it('drain runs due jobs with the real handlers, also the jobs they enqueue and due retries', async () => {
      await queue.add('email', 'welcome', { to: 'ada@example.com' });
      await queue.add('email', 'flaky', {});
      const summary = await tester.drain('email');
      expect(summary).toEqual({ completed: 3, failed: 0, retried: 1 });
      expect(calls).toEqual(['welcome ada@example.com', 'receipt ada@example.com']);
      expect(await tester.enqueued({ state: ['pending', 'active'] })).toEqual([]);
      const [flaky] = await tester.enqueued({ name: 'flaky' });
      expect(flaky).toMatchObject({ state: 'completed', attempts: 2, result: { attempt: 2 } });
    });

    it('drain counts failures, leaves retries that are not due yet, and drains every queue when none is named', async () => {
      await queue.add('email', 'welcome', { to: 'x@invalid' }); // 2 attempts, backoff 0: retried, then failed
      await queue.add('slow-retry', 'fails', {});
      const summary = await tester.drain();
      expect(summary).toEqual({ completed: 0, failed: 1, retried: 2 });
      const [later] = await tester.enqueued({ queue: 'slow-retry' });
      expect(later).toMatchObject({ state: 'pending', attempts: 1 });
      expect(later.lastError?.message).toBe('retried in an hour');
    });

    it('drain stops at maxJobs, and throws DrainTimeoutError when jobs keep coming past timeoutMs', async () => {
      await queue.add('email', 'loop', {});
      expect(await tester.drain('email', { maxJobs: 3 })).toEqual({ completed: 3, failed: 0, retried: 0 });
      const failure = await tester.drain('email', { timeoutMs: 300, maxJobs: 1_000_000 }).catch((e) => e);
      expect(failure).toBeInstanceOf(DrainTimeoutError);
      expect(failure.message).toContain('drain("email") did not finish within 300 ms');
    });

    it('drain and run reject bad input with typed errors naming it', async () => {
      await expect(tester.drain('emial')).rejects.toThrow(new InvalidJobOptionError('queue', 'emial', 'a queue with a @Processor in this app ("email", "slow-retry")'));
      await expect(tester.drain('email', { maxJobs: 0 })).rejects.toBeInstanceOf(InvalidJobOptionError);
      await expect(tester.drain('email', { timeoutMs: -1 })).rejects.toBeInstanceOf(InvalidJobOptionError);
      await expect(tester.run('email', 'nope', {})).rejects.toBeInstanceOf(MissingHandlerError);
      expect(await tester.enqueued()).toEqual([]);
    });

    it('run calls the handler as the worker would: returns its stored result, or throws the very error it threw', async () => {
      await expect(tester.run('email', 'welcome', { to: 'x@y.z' })).resolves.toEqual({ sent: 'x@y.z' });
      const [done] = await tester.enqueued({ name: 'welcome' });
      expect(done).toMatchObject({ state: 'completed', attempts: 1, result: { sent: 'x@y.z' } });

      const error = (await tester.run('email', 'welcome', { to: 'nobody@invalid' }).catch((e: unknown) => e)) as Error;
      expect(error).toBeInstanceOf(BadAddressError);
      expect(error.message).toBe('cannot send to nobody@invalid');
      const [failed] = await tester.enqueued({ name: 'welcome', state: 'failed' });
      expect(failed).toMatchObject({ attempts: 1, maxAttempts: 1, lastError: { message: 'cannot send to nobody@invalid' } });
    });

    it('clear deletes the app\'s jobs', async () => {
      await queue.add('email', 'welcome', { to: 'a@b.c' });
      await queue.add('slow-retry', 'fails', {});
      expect(await tester.clear()).toBe(2);
      expect(await tester.enqueued()).toEqual([]);
    });
  });

  describe('with a running worker', () => {
    const schema = uniqueSchema('tester_w');
    let app: INestApplicationContext;
    let tester: QueueTester;

    beforeAll(async () => {
      app = await createTestApp({ schema, providers: [EmailProcessor], queue: { worker: { pollIntervalMs: 50, shutdownTimeoutMs: 500 } } });
      tester = createQueueTester(app);
    });
    afterAll(async () => {
      await app?.close();
      await dropSchema(schema);
    });

    it('run and drain work alongside the worker: every job ends completed, whoever ran it', async () => {
      await expect(tester.run('email', 'welcome', { to: 'w@example.com' })).resolves.toEqual({ sent: 'w@example.com' });
      const queue = app.get(QueueService);
      for (let i = 0; i < 5; i++) await queue.add('email', 'welcome', { to: `u${i}@example.com` });
      const summary = await tester.drain('email');
      expect(summary.failed).toBe(0);
      await waitFor('every job completed', async () => (await tester.enqueued({ state: ['pending', 'active'] })).length === 0);
      expect(await tester.enqueued({ state: 'completed' })).toHaveLength(12); // 6 welcome + 6 receipt
    });
  });
});

describe('boot warning', () => {
  const schema = uniqueSchema('nowarn');
  afterAll(() => dropSchema(schema));

  function recordingLogger(warnings: string[]): LoggerService {
    return { log: () => undefined, error: () => undefined, warn: (message: unknown) => void warnings.push(String(message)) };
  }

  it('a worker-enabled app with no @Processor at all logs a warning at boot; worker: false or a processor does not', async () => {
    const cases = [
      { providers: [], queue: {}, warns: true },
      { providers: [], queue: { worker: false as const }, warns: false },
      { providers: [SlowRetryProcessor], queue: {}, warns: false },
    ];
    for (const { providers, queue, warns } of cases) {
      const warnings: string[] = [];
      const app = await createTestApp({ schema, providers, queue, logger: recordingLogger(warnings) });
      await app.close();
      const warned = warnings.some((w) => w.startsWith('No @Processor found: this worker runs no jobs'));
      expect({ providers: providers.length, queue, warned }).toEqual({ providers: providers.length, queue, warned: warns });
    }
  });
});
