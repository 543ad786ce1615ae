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
  QueueLimits,
  QueueLimitName,
  QueueLimitsUpdate,
  RateLimit,
  LimitSource,
  EffectiveLimit,
  EffectiveQueueLimits,
} from './interfaces/processor-options.interface';
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
export { OnQueueEvent } from './decorators/on-queue-event.decorator';
export type { QueueEvent, QueueEventType, QueueEventScope, OnQueueEventOptions } from './interfaces/queue-event.interface';
export type { JobProgress, JobLogEntry } from './interfaces/job.interface';
export { Schedule } from './decorators/schedule.decorator';
export type {
  ScheduleSpec,
  ScheduleInfo,
  ScheduleTiming,
  ScheduleDecoratorOptions,
  ScheduleJobOptions,
  ScheduleCatchUp,
  ScheduleOverlap,
} from './interfaces/schedule.interface';
export type { WorkerInfo, QueueStatsRow, QueueStatsFilter, TimingSummary, StatsOptions, MetricsOptions, HealthOptions, QueueHealthReport } from './interfaces/observability.interface';
export { QueueHealthService } from './observability/health/queue-health.service';
export { QueueMetrics } from './observability/prometheus/queue-metrics.service';
export { STATS_BUCKET_BOUNDS_MS, quantileOf } from './observability/stats-buckets';
export type { FlowJob } from './interfaces/job-options.interface';
export type { JobChild } from './interfaces/job.interface';
export type { AddedFlow, AddFlowOptions } from './producer/flow-producer';
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
