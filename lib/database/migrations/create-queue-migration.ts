import type { MigrationInterface, QueryRunner } from 'typeorm';
import { createTableNaming, type TableNaming } from '../table-naming';
import { SCHEMA_STEPS, parseSchemaVersion, readSchemaVersionSql, schemaVersionConstraints, writeSchemaVersion, type SchemaStep } from './job-table.ddl';

/** Options of {@link createQueueMigrations}: the same `schema` and `tableName` given to `QueueModule`. */
export interface QueueMigrationOptions {
  schema?: string;
  tableName?: string;
}

type MigrationClass = new () => MigrationInterface;

/** The timestamp of the first released migration, which holds schema steps 1 and 2. */
const FIRST_MIGRATION_TIMESTAMP = 1764316800000;

/**
 * The TypeORM migration classes that create and upgrade the job table, one per released schema
 * step, for apps that run their own migrations with `QueueModule.forRoot({ migrationsRun: false })`.
 * Add them all to the DataSource's `migrations` (spread the array): TypeORM runs the ones it has not
 * run yet, so a later release's schema steps reach a database whose earlier steps already ran. Each
 * is idempotent: harmless where the module already migrated the table itself.
 *
 * With `migrationsRun: false`, the module checks the table's schema version at boot and refuses to
 * start (`QueueSchemaOutdatedError`) when a step is missing.
 *
 * @example
 * ```ts
 * new DataSource({ ..., migrations: [...QueueJobsMigrations] })                          // default names
 * new DataSource({ ..., migrations: [...createQueueMigrations({ schema: 'jobs' })] })     // custom names
 * ```
 */
export function createQueueMigrations(options: QueueMigrationOptions = {}): MigrationClass[] {
  const naming = createTableNaming(options.schema, options.tableName);
  const suffix = `${naming.schema === 'public' ? '' : `_${naming.schema}`}${naming.table === 'queue_jobs' ? '' : `_${naming.table}`}`;
  // NOTE: steps 1 and 2 were released as one class, under this name; TypeORM knows it by name, so it
  // keeps it. Every later step is a class of its own.
  const first = SCHEMA_STEPS.filter((s) => s.migrationTimestamp === undefined);
  const classes = [migrationClass(`QueueJobs${suffix}${FIRST_MIGRATION_TIMESTAMP}`, naming, first)];
  for (const step of SCHEMA_STEPS) {
    if (step.migrationTimestamp === undefined) continue;
    classes.push(migrationClass(`QueueJobs${suffix}_v${step.version}_${step.migrationTimestamp}`, naming, [step]));
  }
  return classes;
}

/**
 * @deprecated Use {@link createQueueMigrations}: this one class holds only schema steps 1 and 2, so
 * an app that lists it alone never gets a later step.
 */
export function createQueueMigration(options: QueueMigrationOptions = {}): MigrationClass {
  return createQueueMigrations(options)[0];
}

function migrationClass(name: string, naming: TableNaming, steps: SchemaStep[]): MigrationClass {
  const target = steps[steps.length - 1].version;
  return class QueueJobsMigration implements MigrationInterface {
    readonly name = name;

    async up(queryRunner: QueryRunner): Promise<void> {
      for (const step of steps) for (const sql of step.up(naming)) await queryRunner.query(sql);
      // NOTE: the version only moves forward: migrations applied out of order (or the module having
      // migrated the table further meanwhile) must not make a newer table look older.
      const [row] = (await queryRunner.query(readSchemaVersionSql, [naming.qualified, schemaVersionConstraints(naming)])) as { comment: string | null }[];
      if (parseSchemaVersion(row?.comment ?? null) < target) await queryRunner.query(writeSchemaVersion(naming, target));
    }

    async down(queryRunner: QueryRunner): Promise<void> {
      for (const step of [...steps].reverse()) for (const sql of step.down(naming)) await queryRunner.query(sql);
      if (steps[0].version > 1) await queryRunner.query(writeSchemaVersion(naming, steps[0].version - 1));
    }
  };
}

/** The migrations for the default table `public.queue_jobs`. */
export const QueueJobsMigrations: MigrationClass[] = createQueueMigrations();

/** @deprecated Use {@link QueueJobsMigrations}: this class holds only schema steps 1 and 2. */
export const QueueJobsMigration: MigrationClass = QueueJobsMigrations[0];
