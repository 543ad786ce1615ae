import { QueueError } from './queue.error';

/**
 * With `migrationsRun: false`, the job table is missing schema steps this version of the library
 * needs (or the table does not exist). The app fails to boot instead of failing its first statement.
 */
export class QueueSchemaOutdatedError extends QueueError {
  constructor(
    readonly table: string,
    readonly version: number,
    readonly required: number,
  ) {
    super(
      `The job table ${table} is at schema version ${version}, this version of nestjs-pg-queue needs ${required}. ` +
        `With migrationsRun: false, add every migration of createQueueMigrations() (or QueueJobsMigrations) to the DataSource's migrations and run them, ` +
        `or let the module migrate the table (migrationsRun: true).`,
    );
  }
}
