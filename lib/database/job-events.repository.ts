import type { JobRepository } from './job.repository';
import { buildJobEventsStatements, type JobEventsStatements } from './sql/job-events.statements';
import type { Job, JobLogEntry } from '../interfaces/job.interface';
import { toJob, type RawJobRow } from './job-row.mapper';

/** One log entry to append, already cut to size. */
export interface NewLogEntry {
  jobId: string;
  /** Epoch ms of the `log()` call. */
  at: number;
  message: string;
  truncated: boolean;
}

/** How many log entries per job are kept (at least). */
export const LOG_ENTRIES_KEPT = 100;

/**
 * Progress writes, job logs, and the presence of global event listeners (see the statements).
 * Statements that are a worker's writes go through the worker's pool.
 */
export class JobEventsRepository {
  readonly statements: JobEventsStatements;
  /** The text whose hash keys this table's presence locks. */
  readonly presenceKey: string;

  constructor(private readonly jobs: JobRepository) {
    this.statements = buildJobEventsStatements(jobs.naming);
    this.presenceKey = `nestjs-pg-queue:events:${jobs.naming.qualified}`;
  }

  get channel(): string {
    return this.jobs.naming.channel;
  }

  /** Stores `json` as the progress of the attempt (`id`, `claim`) of `workerId`; false when fenced out. */
  async writeProgress(id: string, claim: number, json: string, workerId: string): Promise<boolean> {
    const rows = await this.jobs.runWorkerStatement('progress', this.statements.progress, [id, claim, json, workerId]);
    return rows.length > 0;
  }

  /** Appends entries (in order), keeping at most {@link LOG_ENTRIES_KEPT} per job. */
  async appendLogs(entries: NewLogEntry[]): Promise<void> {
    // NOTE: only each job's last LOG_ENTRIES_KEPT of the batch are sent: the others would be
    // trimmed at once anyway.
    const perJob = new Map<string, number>();
    for (const e of entries) perJob.set(e.jobId, (perJob.get(e.jobId) ?? 0) + 1);
    const seen = new Map<string, number>();
    const kept = entries.filter((e) => {
      const index = (seen.get(e.jobId) ?? 0) + 1;
      seen.set(e.jobId, index);
      return perJob.get(e.jobId)! - index < LOG_ENTRIES_KEPT;
    });
    const jobIds = [...perJob.keys()];
    await this.jobs.runWorkerStatement('log', this.statements.appendLogs, [
      kept.map((e) => e.jobId),
      kept.map((e) => e.at),
      kept.map((e) => e.message),
      kept.map((e) => e.truncated),
      jobIds,
      jobIds.map((id) => Math.max(0, LOG_ENTRIES_KEPT - Math.min(LOG_ENTRIES_KEPT, perJob.get(id)!))),
    ], false);
  }

  async getLogs(id: string): Promise<JobLogEntry[]> {
    const rows = await this.jobs.runStatement<{ at: number; message: string; truncated: boolean }>('getJobLogs', this.statements.logs, [id]);
    return rows.map((r) => ({ at: new Date(r.at), message: r.message, truncated: r.truncated }));
  }

  /** The job with this id, or null (for `waitForJob`). */
  async findJob(id: string): Promise<Job | null> {
    const [row] = await this.jobs.runStatement<RawJobRow>('waitForJob', this.jobs.statements.getById, [id]);
    return row ? toJob(row) : null;
  }

  /** The jobs with these ids that exist, by id: the fallback read of every `waitForJob` of a process at once. */
  async findJobs(ids: string[]): Promise<Map<string, Job>> {
    const rows = await this.jobs.runStatement<RawJobRow>('waitForJob', this.jobs.statements.getByIds, [ids]);
    return new Map(rows.map((row) => [String(row.id), toJob(row)]));
  }

  /** The event type codes some process of this database listens to globally. */
  async listenedTypeCodes(): Promise<number[]> {
    const [row] = await this.jobs.runWorkerStatement<{ codes: number[] }>('events', this.statements.listenedTypes, [this.presenceKey]);
    return row?.codes ?? [];
  }

  /** Sends each payload as one notification on the table's channel, all in one statement. */
  async notify(payloads: string[]): Promise<void> {
    await this.jobs.runWorkerStatement('events', this.statements.notify, [payloads]);
  }
}
