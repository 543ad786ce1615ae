import type { MigrationInterface, QueryRunner } from 'typeorm';
import { createTableNaming } from '../table-naming';
import { LATEST_SCHEMA_VERSION, SCHEMA_STEPS, writeSchemaVersion } from './job-table.ddl';

/** Options of {@link createQueueMigration}: the same `schema` and `tableName` given to `QueueModule`. */
export interface QueueMigrationOptions {
  schema?: string;
  tableName?: string;
}

/**
 * A TypeORM migration class that creates (or upgrades) the job table, for apps that run their own
 * migrations with `QueueModule.forRoot({ migrationsRun: false })`. Add it to the DataSource's
 * `migrations`. It is idempotent: harmless where the module already created the table.
 *
 * @example
 * ```ts
 * new DataSource({ ..., migrations: [QueueJobsMigration] })                        // default names
 * new DataSource({ ..., migrations: [createQueueMigration({ schema: 'jobs' })] })    // custom names
 * ```
 */
export function createQueueMigration(options: QueueMigrationOptions = {}): new () => MigrationInterface {
  const naming = createTableNaming(options.schema, options.tableName);
  class QueueJobsMigration1764316800000 implements MigrationInterface {
    readonly name = `QueueJobs${naming.schema === 'public' ? '' : `_${naming.schema}`}${naming.table === 'queue_jobs' ? '' : `_${naming.table}`}1764316800000`;

    async up(queryRunner: QueryRunner): Promise<void> {
      for (const step of SCHEMA_STEPS) for (const sql of step.up(naming)) await queryRunner.query(sql);
      await queryRunner.query(writeSchemaVersion(naming, LATEST_SCHEMA_VERSION));
    }

    async down(queryRunner: QueryRunner): Promise<void> {
      for (const step of [...SCHEMA_STEPS].reverse()) for (const sql of step.down(naming)) await queryRunner.query(sql);
    }
  }
  return QueueJobsMigration1764316800000;
}

/** The migration for the default table `public.queue_jobs`. */
export const QueueJobsMigration = createQueueMigration();
