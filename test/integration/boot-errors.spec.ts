import { Handle, Processor, DuplicateHandlerError, HandleWithoutProcessorError, InvalidModuleOptionsError } from '../../lib';
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
});
