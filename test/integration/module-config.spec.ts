import { Injectable, Module, type INestApplicationContext } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { TypeOrmModule } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import {
  createJobEntity,
  createQueueMigration,
  createQueueMigrations,
  Handle,
  InvalidModuleOptionsError,
  JobState,
  Processor,
  QueueModule,
  QueueSchemaOutdatedError,
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
      migrations: createQueueMigrations(naming),
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

  it('migrationsRun: false without the table fails the boot, naming the table and what to do', async () => {
    const dataSource = await createTestDataSource();
    @Module({ imports: [QueueModule.forRoot({ dataSource, schema, tableName: 'never_created', migrationsRun: false, worker: false })] })
    class NoTableModule {}
    try {
      const error = await boot(NoTableModule).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(QueueSchemaOutdatedError);
      expect((error as Error).message).toContain(`"${schema}"."never_created" is at schema version 0`);
      expect((error as Error).message).toContain('createQueueMigrations()');
    } finally {
      await dataSource.destroy();
    }
  });

  it('migrationsRun: false, upgrading from the single migration class of release 0.1: refused until the new steps ran, then works', async () => {
    const naming = { schema, tableName: 'upgraded_by_app' };
    const migrationsTableName = `${schema}_upgrade_migrations`;
    // Release 0.1 exported one class; the app ran it (TypeORM recorded it by name).
    const before = await createTestDataSource({ migrations: [createQueueMigration(naming)], migrationsTableName });
    const after = await createTestDataSource({ migrations: createQueueMigrations(naming), migrationsTableName });
    try {
      expect((await before.runMigrations()).map((m) => m.name)).toHaveLength(1);
      @Module({ imports: [QueueModule.forRoot({ dataSource: after, ...naming, migrationsRun: false, worker: { pollIntervalMs: 50 } })], providers: [CfgProcessor] })
      class UpgradedModule {}
      const refused = await boot(UpgradedModule).catch((e: unknown) => e);
      expect(refused).toBeInstanceOf(QueueSchemaOutdatedError);
      expect(refused).toMatchObject({ version: 2 });

      // The app upgrades the library's migrations list: only the steps it has not run are run.
      const ran = await after.runMigrations();
      expect(ran.map((m) => m.name)).toEqual(createQueueMigrations(naming).slice(1).map((M) => new M().name));
      expect(ran.length).toBeGreaterThan(0);
      const app = await boot(UpgradedModule);
      try {
        const queue = app.get(QueueService);
        const job = await queue.add('cfg', 'echo', { v: 'upgraded' });
        expect((await waitForJobState(queue, job.id, JobState.Completed)).result).toBe('upgraded');
      } finally {
        await app.close();
      }
      // Undone step by step, newest first, down to nothing.
      for (let i = 0; i < createQueueMigrations(naming).length; i++) await after.undoLastMigration();
      expect(await sql(`SELECT to_regclass($1) AS t`, [`"${schema}"."upgraded_by_app"`])).toEqual([{ t: null }]);
    } finally {
      await sql(`DROP TABLE IF EXISTS public."${migrationsTableName}"`);
      await before.destroy();
      await after.destroy();
    }
  });
});
