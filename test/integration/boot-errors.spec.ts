import { Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import {
  ConflictingProcessorOptionsError,
  DuplicateHandlerError,
  DuplicateQueueModuleError,
  Handle,
  HandleWithoutProcessorError,
  InvalidModuleOptionsError,
  Processor,
  QueueModule,
} from '../../lib';
import { HandlerRegistry } from '../../lib/discovery/handler.registry';
import type { DataSource } from 'typeorm';
import { createTestApp, createTestDataSource } from './helpers/app';
import { dropSchema, uniqueSchema } from './helpers/database';

const schema = uniqueSchema('boot');

@Processor('mail')
class FirstMailer {
  @Handle('welcome') welcome() {}
}

@Processor('mail')
class SecondMailer {
  @Handle('welcome') alsoWelcome() {}
}

@Processor('mail')
class CatchAllOne {
  @Handle() any() {}
}

@Processor('mail')
class CatchAllTwo {
  @Handle() anyToo() {}
}

class NotAProcessor {
  @Handle('orphan') orphan() {}
}

describe('misuse fails the boot with a typed error', () => {
  let dataSource: DataSource;
  beforeAll(async () => {
    dataSource = await createTestDataSource();
  });
  afterAll(async () => {
    await dataSource.destroy();
    await dropSchema(schema);
  });

  it('two handlers for the same (queue, name) name both classes', async () => {
    const error = await createTestApp({ schema, dataSource, providers: [FirstMailer, SecondMailer] }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DuplicateHandlerError);
    expect((error as Error).message).toContain('FirstMailer.welcome');
    expect((error as Error).message).toContain('SecondMailer.alsoWelcome');
    expect((error as Error).message).toContain('"welcome"');
  });

  it('two catch-all handlers for one queue', async () => {
    const error = await createTestApp({ schema, dataSource, providers: [CatchAllOne, CatchAllTwo] }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DuplicateHandlerError);
    expect((error as Error).message).toMatch(/catch-all.*CatchAllOne\.any.*CatchAllTwo\.anyToo/);
  });

  it('@Handle in a class without @Processor', async () => {
    const error = await createTestApp({ schema, dataSource, providers: [NotAProcessor] }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(HandleWithoutProcessorError);
    expect((error as Error).message).toContain('NotAProcessor.orphan');
  });

  it.each([
    ['a schema name that could inject SQL', { schema: 'public"; DROP TABLE x; --' }, 'schema'],
    ['an upper-case table name', { tableName: 'Jobs' }, 'tableName'],
    ['a too-long table name', { tableName: 'x'.repeat(64) }, 'tableName'],
    ['a negative poll interval', { worker: { pollIntervalMs: -5 } }, 'worker.pollIntervalMs'],
    ['a fractional lock duration', { worker: { lockDurationMs: 1000.5 } }, 'worker.lockDurationMs'],
    ['a bad default maxAttempts', { defaultJobOptions: { maxAttempts: 0 } }, 'defaultJobOptions.maxAttempts'],
    ['a non-boolean listen', { worker: { listen: 'yes' } }, 'worker.listen'],
    ['an unknown module option', { dashboard: {} }, 'dashboard'],
    ['a misspelt module option', { tablename: 'jobs' }, 'tablename'],
    ['an unknown worker option', { worker: { concurrency: 5 } }, 'worker.concurrency'],
    ["pg-boss's poll interval", { worker: { newJobCheckInterval: 500 } }, 'worker.newJobCheckInterval'],
    ['an unknown default job option', { defaultJobOptions: { delay: 5 } }, 'defaultJobOptions.delay'],
  ])('invalid module options: %s', async (_what, queueOptions, option) => {
    const error = await createTestApp({ schema, dataSource, queue: queueOptions as never }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InvalidModuleOptionsError);
    expect((error as InvalidModuleOptionsError).option).toBe(option);
  });

  it('invalid processor options', async () => {
    @Processor('mail', { concurrency: 0 })
    class ZeroConcurrency {
      @Handle('x') x() {}
    }
    const error = await createTestApp({ schema, dataSource, providers: [ZeroConcurrency] }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InvalidModuleOptionsError);
    expect((error as Error).message).toContain('ZeroConcurrency @Processor concurrency');
  });

  it.each([
    ["BullMQ's limiter", { limiter: { max: 5, duration: 1000 } }, 'limiter', 'did you mean rateLimit?'],
    ['a misspelt option', { concurency: 5 }, 'concurency', 'did you mean concurrency?'],
    ['a default the processor cannot set', { defaultJobOptions: { priority: 5 } }, 'defaultJobOptions.priority', 'defaultJobOptions takes maxAttempts, backoff, timeoutMs'],
  ])('unknown processor options: %s', async (_what, options, option, hint) => {
    @Processor('mail', options as never)
    class Unknown {
      @Handle('x') x() {}
    }
    const error = await createTestApp({ schema, dataSource, providers: [Unknown] }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InvalidModuleOptionsError);
    expect((error as InvalidModuleOptionsError).option).toBe(`Unknown @Processor ${option}`);
    expect((error as Error).message).toContain(hint);
  });

  it('two processors of one queue declaring different options name both classes and the option', async () => {
    @Processor('split', { concurrency: 2 })
    class SplitA {
      @Handle('a') a() {}
    }
    @Processor('split', { concurrency: 5 })
    class SplitB {
      @Handle('b') b() {}
    }
    const error = await createTestApp({ schema, dataSource, providers: [SplitA, SplitB] }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConflictingProcessorOptionsError);
    expect((error as Error).message).toMatch(/SplitA and SplitB of queue "split" declare different values of concurrency: 2 and 5/);
  });

  it('processors of one queue split by job name merge their options when they do not conflict', async () => {
    @Processor('merged', { concurrency: 3 })
    class MergedA {
      @Handle('a') a() {}
    }
    @Processor('merged', { defaultJobOptions: { maxAttempts: 7 } })
    class MergedB {
      @Handle('b') b() {}
    }
    @Processor('merged', { concurrency: 3 })
    class MergedC {
      @Handle('c') c() {}
    }
    const app = await createTestApp({ schema, dataSource, providers: [MergedA, MergedB, MergedC], queue: { worker: false } });
    try {
      const [queue] = app.get(HandlerRegistry).getQueues();
      expect(queue.options).toEqual({ concurrency: 3, defaultJobOptions: { maxAttempts: 7 } });
      expect([...queue.handlers.keys()].sort()).toEqual(['a', 'b', 'c']);
    } finally {
      await app.close();
    }
  });

  it('QueueModule imported twice with different options names both importers', async () => {
    @Module({ imports: [QueueModule.forRoot({ schema, dataSource, worker: false })] })
    class BillingModule {}
    @Module({ imports: [QueueModule.forRoot({ schema, dataSource, tableName: 'other_jobs', worker: false }), BillingModule] })
    class RootModule {}
    const error = await NestFactory.createApplicationContext(RootModule, { logger: false, abortOnError: false }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DuplicateQueueModuleError);
    expect((error as Error).message).toContain('imported by BillingModule');
    expect((error as Error).message).toContain('imported by RootModule');
    expect((error as Error).message).toContain(`"${schema}"."other_jobs"`);
  });
});
