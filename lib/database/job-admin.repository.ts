import type { JobRepository } from './job.repository';
import { runAdminStatement } from './admin-statement';
import { isUniqueViolation } from './database-errors';
import { toJob, type RawJobRow } from './job-row.mapper';
import {
  buildBatchIdsStatement,
  buildBatchStatement,
  buildJobAdminStatements,
  type BatchRow,
  type BatchSource,
  type BulkAction,
  type JobAdminStatements,
} from './sql/job-admin.statements';
import { QueueDatabaseError } from '../errors/queue-database.error';
import type { Job } from '../interfaces/job.interface';

/** SQLSTATEs after which a bulk batch is simply run again: a deadlock (with a worker's outcome write), a serialization failure. */
const RERUN_CODES = new Set(['40P01', '40001']);
const BATCH_TRIES = 5;

/** The single and bulk actions of the job management API (delete, promote, update, retry, cancel). */
export class JobAdminRepository {
  private readonly statements: JobAdminStatements;

  constructor(
    private readonly jobs: JobRepository,
    private readonly timeoutMs: number,
  ) {
    this.statements = buildJobAdminStatements(jobs.naming, jobs.statements);
  }

  /** The deleted job as it was, or null (no such job, or it is active). */
  async deleteOne(id: string): Promise<Job | null> {
    return this.one('deleteJob', this.statements.deleteOne, [id]);
  }

  /** The promoted job, or null (no such job, or not pending). */
  async promoteOne(id: string): Promise<Job | null> {
    return this.one('promote', this.statements.promoteOne, [id]);
  }

  /** The updated job, or null (no such job, or not pending any more). `data` is JSON text or null. */
  async updateOne(id: string, data: string | null, priority: number | null, runAt: Date | null): Promise<Job | null> {
    return this.one('updateJob', this.statements.updateOne, [id, data, priority, runAt?.toISOString() ?? null]);
  }

  /**
   * Runs one batch of `action` in its own transaction. A batch that deadlocked with a worker's
   * write is run again; a retry whose jobs' unique keys collide (with a job holding the key, or
   * with each other) is redone job by job, and the jobs whose key is held are left as they are.
   */
  async runBatch(action: BulkAction, source: BatchSource): Promise<BatchRow> {
    try {
      return await this.batchWithReruns(action, source);
    } catch (error) {
      if (action !== 'retry' || !isUniqueViolation(error)) throw error;
    }
    const { text, values } = buildBatchIdsStatement(this.jobs.naming, action, source);
    const [found] = await runAdminStatement<{ last: string | null; examined: number; ids: string[] | null }>(this.jobs, 'retryJobs', this.timeoutMs, text, values);
    const total: BatchRow = { last: found.last, examined: found.examined, affected: 0, queues: [] };
    for (const id of found.ids ?? []) {
      try {
        const done = await this.batchWithReruns(action, { ids: [id] });
        total.affected += done.affected;
        total.queues!.push(...(done.queues ?? []));
      } catch (error) {
        // NOTE: another job holds this one's unique key: it stays failed (or cancelled), as retry() refuses it.
        if (!isUniqueViolation(error)) throw error;
      }
    }
    return total;
  }

  private async batchWithReruns(action: BulkAction, source: BatchSource): Promise<BatchRow> {
    const { text, values } = buildBatchStatement(this.jobs.naming, this.jobs.statements, action, source);
    for (let tries = 1; ; tries++) {
      try {
        const [row] = await runAdminStatement<BatchRow>(this.jobs, `${action}Jobs`, this.timeoutMs, text, values);
        return row;
      } catch (error) {
        if (tries >= BATCH_TRIES || !(error instanceof QueueDatabaseError && error.sqlState !== null && RERUN_CODES.has(error.sqlState))) throw error;
      }
    }
  }

  private async one(operation: string, text: string, values: unknown[]): Promise<Job | null> {
    const [row] = await runAdminStatement<RawJobRow>(this.jobs, operation, this.timeoutMs, text, values);
    return row ? toJob(row) : null;
  }
}
