import { Injectable, Module, type INestApplicationContext } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { TypeOrmModule } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import {
  createJobEntity,
  createQueueMigration,
  Handle,
  InvalidModuleOptionsError,
  JobState,
  Processor,
  QueueModule,
  QueueService,
  type Job,
  type QueueModuleOptions,
  type QueueOptionsFactory,
} from '../../lib';
import { createTestDataSource } from './helpers/app';
import { DATABASE_URL, dropSchema, sql, uniqueSchema } from './helpers/database';
import { waitForJobState } from './helpers/jobs';

const schema = uniqueSchema('cfg');

@Processor('cfg')
class CfgProcessor {
  @Handle('echo')
  echo(job: Job<{ v: string }>) {
    return job.data.v;
  }
}

async function boot(module: new () => unknown): Promise<INestApplicationContext> {
  return NestFactory.createApplicationContext(module, { logger: false, abortOnError: false });
}

describe('module configuration', () => {
  afterAll(() => dropSchema(schema));

  it('forRootAsync with useFactory and inject, on a named TypeORM connection, with its own table name', async () => {
    @Injectable()
    class Settings {
      readonly schema = schema;
    }
    @Module({ providers: [Settings], exports: [Settings] })
    class SettingsModule {}

    @Module({
      imports: [
        TypeOrmModule.forRoot({ name: 'jobsdb', type: 'postgres', url: DATABASE_URL }),
        QueueModule.forRootAsync({
          imports: [SettingsModule],
          inject: [Settings],
          useFactory: (settings: Settings): QueueModuleOptions => ({
            dataSource: 'jobsdb',
            schema: settings.schema,
            tableName: 'async_jobs',
            worker: { pollIntervalMs: 50 },
          }),
        }),
      ],
      providers: [CfgProcessor],
    })
    class AsyncAppModule {}

    const app = await boot(AsyncAppModule);
    try {
      const queue = app.get(QueueService);
      const job = await queue.add('cfg', 'echo', { v: 'async' });
      expect((await waitForJobState(queue, job.id, JobState.Completed)).result).toBe('async');
      expect(await sql(`SELECT id FROM "${schema}".async_jobs WHERE id = $1`, [job.id])).toHaveLength(1);
    } finally {
      await app.close();
    }
  });

  it('forRootAsync with useClass, and an explicit DataSource instance', async () => {
    const dataSource = await createTestDataSource();
    class OptionsFactory implements QueueOptionsFactory {
      createQueueOptions(): QueueModuleOptions {
        return { dataSource, schema, tableName: 'class_jobs', worker: { pollIntervalMs: 50 } };
      }
    }
    @Module({ imports: [QueueModule.forRootAsync({ useClass: OptionsFactory })], providers: [CfgProcessor] })
    class ClassAppModule {}
    const app = await boot(ClassAppModule);
    try {
      const queue = app.get(QueueService);
      const job = await queue.add('cfg', 'echo', { v: 'class' });
      expect((await waitForJobState(queue, job.id, JobState.Completed)).result).toBe('class');
    } finally {
      await app.close();
      // The module does not own a DataSource it was given: it is still usable after close.
      expect(dataSource.isInitialized).toBe(true);
      await dataSource.destroy();
    }
  });

  it('migrationsRun: false with the exported migration run by TypeORM, and the entity readable through TypeORM', async () => {
    const naming = { schema, tableName: 'own_migrations' };
    const entity = createJobEntity(naming);
    const dataSource = await createTestDataSource({
      migrations: [createQueueMigration(naming)],
      entities: [entity],
      migrationsTableName: `${schema}_migrations`,
    });
    try {
      await dataSource.runMigrations();
      // Running it again (or letting the module check it) is harmless.
      expect(await dataSource.runMigrations()).toEqual([]);
      @Module({
        imports: [QueueModule.forRoot({ dataSource, ...naming, migrationsRun: false, worker: { pollIntervalMs: 50 } })],
        providers: [CfgProcessor],
      })
      class OwnMigrationsModule {}
      const app = await boot(OwnMigrationsModule);
      try {
        const queue = app.get(QueueService);
        const job = await queue.add('cfg', 'echo', { v: 'migrated' });
        await waitForJobState(queue, job.id, JobState.Completed);
        const row = await dataSource.getRepository(entity).findOneByOrFail({ id: job.id });
        expect(row).toMatchObject({ id: job.id, queue: 'cfg', name: 'echo', state: 'completed', result: 'migrated', attempts: 1 });
        expect(row.finishedAt).toBeInstanceOf(Date);
      } finally {
        await app.close();
      }
      // TypeORM sees no difference between the entity and the migrated table.
      const pending = await dataSource.driver.createSchemaBuilder().log();
      expect(pending.upQueries.map((q) => q.query)).toEqual([]);
    } finally {
      await sql(`DROP TABLE IF EXISTS public."${schema}_migrations"`);
      await dataSource.destroy();
    }
  });

  it('a named connection that does not exist fails the boot, naming it', async () => {
    @Module({ imports: [QueueModule.forRoot({ dataSource: 'nope', schema, worker: false })] })
    class MissingConnectionModule {}
    const error = await boot(MissingConnectionModule).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InvalidModuleOptionsError);
    expect((error as Error).message).toContain("name: 'nope'");
  });

  it('migrationsRun: false without the table fails clearly on use', async () => {
    const dataSource = await createTestDataSource();
    @Module({ imports: [QueueModule.forRoot({ dataSource, schema, tableName: 'never_created', migrationsRun: false, worker: false })] })
    class NoTableModule {}
    const app = await boot(NoTableModule);
    try {
      await expect(app.get(QueueService).add('cfg', 'echo', {})).rejects.toThrow(/never_created.*does not exist/);
    } finally {
      await app.close();
      await dataSource.destroy();
    }
  });
});
