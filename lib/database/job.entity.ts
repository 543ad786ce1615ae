import { EntitySchema } from 'typeorm';
import { createTableNaming } from './table-naming';
import { JOB_STATES_CHECK } from './migrations/v5/flows.ddl';
import type { BackoffOptions } from '../interfaces/job-options.interface';
import type { JobError, JobState } from '../interfaces/job.interface';

/**
 * A row of the job table as TypeORM sees it. Use it to query jobs with TypeORM
 * (`dataSource.getRepository(JobEntity).findBy({ state: JobState.Failed })`); the queue itself uses
 * its own SQL. Prefer `QueueService` for anything that changes a job: it keeps the state machine.
 */
export interface JobRow {
  id: string;
  queue: string;
  name: string;
  data: unknown;
  state: JobState;
  priority: number;
  runAt: Date;
  attempts: number;
  claims: number;
  maxAttempts: number | null;
  backoff: BackoffOptions | null;
  timeoutMs: number | null;
  result: unknown;
  lastError: JobError | null;
  lockedBy: string | null;
  lockedUntil: Date | null;
  uniqueKey: string | null;
  uniqueHold: 'finish' | 'start' | 'window' | null;
  uniqueSlot: string | null;
  groupKey: string | null;
  /** The last value of `job.progress()` (schema step 5). */
  progress: unknown;
  /** The slot of the cron schedule this job was enqueued for (schema step 5), or null. */
  scheduledFor: Date | null;
  /** The key of that schedule, or null. */
  scheduleKey: string | null;
  /** The W3C trace context of the span that added the job (`{ traceparent, tracestate? }`), with tracing on; else null. */
  traceContext: Record<string, string> | null;
  /** Flows (schema step 5): the parent of a flow's child; dependencies not yet settled; whether
   * other jobs depend on this one; `'continue'` when a failed dependency does not fail this job. */
  parentId: string | null;
  depsPending: number | null;
  hasDependents: boolean | null;
  onChildFailure: 'continue' | 'fail' | null;
  /** Set by the claim of a queue with limits: while active, the job counts against them. */
  limitsHeld: boolean | null;
  createdAt: Date;
  startedAt: Date | null;
  finishedAt: Date | null;
}

/**
 * The TypeORM entity of a job table with the given names. Register it in the DataSource's
 * `entities` to read jobs through TypeORM. Do not let `synchronize: true` manage it: the table,
 * its partial indexes and storage settings come from the queue's migration.
 */
export function createJobEntity(options: { schema?: string; tableName?: string } = {}): EntitySchema<JobRow> {
  const naming = createTableNaming(options.schema, options.tableName);
  return new EntitySchema<JobRow>({
    // NOTE: the indexes and the check are declared as the migration creates them, so
    // TypeORM's schema diff (`migration:generate`, `synchronize`) sees nothing to change.
    indices: [
      // An expression index (hashtext(queue), ...), which entity metadata cannot describe: TypeORM
      // is told to leave it alone.
      { name: `${naming.prefix}_claim_hash_idx`, synchronize: false },
      // Unique on an expression, with a predicate on states: left alone too.
      { name: `${naming.prefix}_unique_idx`, synchronize: false },
      // One job per schedule slot (schema step 5): a partial unique index, left alone too.
      { name: `${naming.prefix}_schedule_slot_idx`, synchronize: false },
      // The limits' expression indexes (hashtext(queue), ...): left alone too.
      { name: `${naming.prefix}_group_pending_idx`, synchronize: false },
      { name: `${naming.prefix}_limits_active_idx`, synchronize: false },
      { name: `${naming.prefix}_lease_idx`, columns: ['lockedUntil'], where: `"state" = 'active'` },
      { name: `${naming.prefix}_finished_idx`, columns: ['finishedAt'], where: `"state" IN ('completed', 'failed', 'cancelled')` },
      { name: `${naming.prefix}_parent_idx`, columns: ['parentId'], where: `"parent_id" IS NOT NULL` },
      // Schema step 5 (job management API): failed and cancelled jobs by queue, and by id.
      { name: `${naming.prefix}_dead_idx`, columns: ['queue', 'id'], where: `"state" IN ('failed', 'cancelled')` },
      { name: `${naming.prefix}_dead_id_idx`, columns: ['id'], where: `"state" IN ('failed', 'cancelled')` },
    ],
    checks: [{ name: `${naming.prefix}_state_check`, expression: JOB_STATES_CHECK }],
    name: naming.schema === 'public' && naming.table === 'queue_jobs' ? 'QueueJob' : `QueueJob_${naming.schema}_${naming.table}`,
    schema: naming.schema,
    tableName: naming.table,
    columns: {
      id: { type: 'bigint', primary: true, generated: 'increment' },
      queue: { type: 'text' },
      name: { type: 'text' },
      data: { type: 'jsonb', default: () => "'{}'" },
      state: { type: 'text', default: 'pending' },
      priority: { type: 'integer', default: 0 },
      runAt: { name: 'run_at', type: 'timestamptz', default: () => 'now()' },
      attempts: { type: 'integer', default: 0 },
      claims: { type: 'integer', default: 0 },
      maxAttempts: { name: 'max_attempts', type: 'integer', nullable: true },
      backoff: { type: 'jsonb', nullable: true },
      timeoutMs: { name: 'timeout_ms', type: 'integer', nullable: true },
      result: { type: 'jsonb', nullable: true },
      lastError: { name: 'last_error', type: 'jsonb', nullable: true },
      lockedBy: { name: 'locked_by', type: 'text', nullable: true },
      lockedUntil: { name: 'locked_until', type: 'timestamptz', nullable: true },
      createdAt: { name: 'created_at', type: 'timestamptz', default: () => 'now()' },
      startedAt: { name: 'started_at', type: 'timestamptz', nullable: true },
      finishedAt: { name: 'finished_at', type: 'timestamptz', nullable: true },
      uniqueKey: { name: 'unique_key', type: 'text', nullable: true },
      uniqueHold: { name: 'unique_hold', type: 'text', nullable: true },
      uniqueSlot: { name: 'unique_slot', type: 'bigint', nullable: true },
      groupKey: { name: 'group_key', type: 'text', nullable: true },
      progress: { type: 'jsonb', nullable: true },
      scheduledFor: { name: 'scheduled_for', type: 'timestamptz', nullable: true },
      scheduleKey: { name: 'schedule_key', type: 'text', nullable: true },
      traceContext: { name: 'trace_context', type: 'jsonb', nullable: true },
      parentId: { name: 'parent_id', type: 'bigint', nullable: true },
      depsPending: { name: 'deps_pending', type: 'integer', nullable: true },
      hasDependents: { name: 'has_dependents', type: 'boolean', nullable: true },
      onChildFailure: { name: 'on_child_failure', type: 'text', nullable: true },
      limitsHeld: { name: 'limits_held', type: 'boolean', nullable: true },
    },
  });
}

/** The entity of the default table `public.queue_jobs`. */
export const JobEntity = createJobEntity();
