export { QueueModule } from './queue.module';
export { QueueService } from './producer/queue.service';
export { Processor } from './decorators/processor.decorator';
export { Handle } from './decorators/handle.decorator';
export { JobState, Job, ActiveJob } from './interfaces/job.interface';
export type { JobError, JobCounts } from './interfaces/job.interface';
export type { QueueInfo } from './interfaces/queue-info.interface';
export type { JobOptions, BulkJob, BackoffOptions, JobRunOptions, DefaultJobOptions, UniqueOptions } from './interfaces/job-options.interface';
export type { ProcessorOptions } from './interfaces/processor-options.interface';
export type {
  QueueModuleOptions,
  QueueModuleAsyncOptions,
  QueueOptionsFactory,
  WorkerOptions,
} from './interfaces/queue-module-options.interface';
export { JobEntity, createJobEntity, type JobRow } from './database/job.entity';
export {
  QueueJobsMigrations,
  createQueueMigrations,
  QueueJobsMigration,
  createQueueMigration,
  type QueueMigrationOptions,
} from './database/migrations/create-queue-migration';
export * from './errors';
export { JobSnooze } from './worker/job-snooze';
export type {
  JobSort,
  JobFilter,
  ListJobsOptions,
  JobPage,
  JobSelection,
  BulkActionOptions,
  BulkActionProgress,
  JobUpdate,
} from './interfaces/job-admin.interface';
