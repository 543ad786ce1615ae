import 'reflect-metadata';
import { Module, type INestApplicationContext, type LoggerService, type Provider, type Type } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { TypeOrmModule } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import { QueueModule, type QueueModuleOptions } from '../../../lib';
import { DATABASE_URL } from './database';

export interface TestAppOptions {
  schema: string;
  providers?: (Provider | Type)[];
  queue?: Omit<QueueModuleOptions, 'schema'>;
  /** Extra TypeORM options, e.g. entities for transactional tests, or a different url. */
  typeorm?: Record<string, unknown>;
  /**
   * Use this DataSource (owned by the test) instead of importing TypeOrmModule: for boots that are
   * expected to fail, where Nest would leave an app-owned pool open.
   */
  dataSource?: DataSource;
  /** Nest's logger for the app (default: silent unless TEST_LOGS is set). */
  logger?: LoggerService;
}

/**
 * Boots a real Nest application context: TypeORM on the test database (its own pool) plus
 * QueueModule in the test file's schema. Close it with `app.close()`.
 */
export async function createTestApp(options: TestAppOptions): Promise<INestApplicationContext> {
  @Module({
    imports: [
      ...(options.dataSource ? [] : [TypeOrmModule.forRoot({
        type: 'postgres',
        url: DATABASE_URL,
        synchronize: false,
        logging: false,
        poolSize: 10,
        ...(options.typeorm ?? {}),
      } as never)]),
      QueueModule.forRoot({ schema: options.schema, dataSource: options.dataSource, ...options.queue }),
    ],
    providers: options.providers ?? [],
  })
  class TestAppModule {}

  return NestFactory.createApplicationContext(TestAppModule, {
    logger: options.logger ?? (process.env.TEST_LOGS ? undefined : false),
    // NOTE: a failed boot must reject (so tests can assert the error), not exit the test process.
    abortOnError: false,
  });
}

/** A DataSource owned by the test (destroy it in afterAll). */
export async function createTestDataSource(extra: Record<string, unknown> = {}): Promise<DataSource> {
  const dataSource = new DataSource({ type: 'postgres', url: DATABASE_URL, ...extra } as never);
  return dataSource.initialize();
}
