import type { EntityManager } from 'typeorm';
import { jobJsonFields, type JobRepository, type NewJobRow } from './job.repository';
import { buildFlowStatements, type FlowStatements } from './sql/flow.statements';
import { JobState, type Job, type JobChild, type JobError } from '../interfaces/job.interface';
import { JobDependencyError } from '../errors/job-dependency.error';

/** One job of a flow to insert, in pre-order (see `insertFlow` in the flow statements). */
export interface FlowNodeRow {
  row: NewJobRow;
  /** Index of the parent in the list (null for the root). */
  parent: number | null;
  children: number;
  onChildFailure: 'fail' | 'continue';
}

/** Flows and dependencies (`<table>_deps`): inserting them and reading a job's children. */
export class FlowRepository {
  private readonly statements: FlowStatements;

  constructor(private readonly jobs: JobRepository) {
    this.statements = buildFlowStatements(jobs.naming);
  }

  /** Inserts a whole flow atomically (one statement), in `manager`'s transaction when given; returns its jobs in input order. */
  async insertFlow(nodes: FlowNodeRow[], manager?: EntityManager): Promise<Job[]> {
    // NOTE: one JSON array, its data and backoff spliced in as the JSON texts they already are
    // (validated), not parsed and stringified again.
    const json = nodes
      .map(
        (node, i) =>
          `{"ord":${i},"parent_ord":${node.parent ?? 'null'},"children":${node.children},` +
          // 'fail' (the default) is stored as NULL: only 'continue' needs telling apart.
          `"on_child_failure":${node.onChildFailure === 'continue' ? '"continue"' : 'null'},${jobJsonFields(node.row)}}`,
      )
      .join(',');
    const [inserted] = await this.jobs.runStatement<{ ids: string; now: number }>('insert', this.statements.insertFlow, [`[${json}]`], manager);
    const ids = inserted.ids.split(',');
    const createdAt = Number(inserted.now);
    return nodes.map((node, i) =>
      newJob(node.row, ids[i], createdAt, node.children > 0 ? JobState.Blocked : JobState.Pending, node.parent === null ? null : ids[node.parent]),
    );
  }

  /**
   * Inserts one job that depends on `dependsOn` (distinct ids); in `manager`'s transaction when given.
   * @throws JobDependencyError naming the ids that do not exist (nothing stored)
   */
  async insertDependent(row: NewJobRow, dependsOn: string[], onChildFailure: 'fail' | 'continue', manager?: EntityManager): Promise<Job> {
    const text = (v: number | null) => (v === null ? null : String(v));
    const params = [
      row.queue, row.name, row.data, String(row.priority), row.runAt?.toISOString() ?? null, String(row.delayMs),
      text(row.maxAttempts), row.backoff, text(row.timeoutMs), dependsOn, onChildFailure, row.group, row.traceContext ?? null,
    ];
    const [inserted] = await this.jobs.runStatement<{ id: string; state: JobState; last_error: JobError | null; now: number }>(
      'insert', this.statements.insertDependent, params, manager,
    );
    if (!inserted) {
      const found = new Set((await this.jobs.runStatement<{ id: string }>('insert', this.statements.existingIds, [dependsOn], manager)).map((r) => r.id));
      const missing = dependsOn.filter((id) => !found.has(id));
      // NOTE: all existed when looked at again: one was deleted (retention) during the insert, and is back? Name them all.
      throw new JobDependencyError('not-found', null, missing.length > 0 ? missing : dependsOn);
    }
    const job = newJob(row, inserted.id, Number(inserted.now), inserted.state, null);
    job.lastError = inserted.last_error;
    if (inserted.state === JobState.Failed) job.finishedAt = job.createdAt;
    return job;
  }

  /** The children or dependencies of job `id`, in id order. */
  async children(id: string): Promise<JobChild[]> {
    const rows = await this.jobs.runStatement<{ id: string; queue: string; name: string; state: JobState; result: unknown; last_error: JobError | null }>(
      'getChildren', this.statements.children, [id],
    );
    return rows.map((r) => ({ id: r.id, queue: r.queue, name: r.name, state: r.state, result: r.result, lastError: r.last_error }));
  }
}

/** A job as inserted by a flow statement. */
function newJob(row: NewJobRow, id: string, createdAt: number, state: JobState, parentId: string | null): Job {
  return {
    id,
    queue: row.queue,
    name: row.name,
    data: JSON.parse(row.data),
    state,
    attempts: 0,
    claims: 0,
    maxAttempts: row.maxAttempts,
    priority: row.priority,
    runAt: row.runAt ?? new Date(createdAt + row.delayMs),
    backoff: row.backoff === null ? null : JSON.parse(row.backoff),
    timeoutMs: row.timeoutMs,
    createdAt: new Date(createdAt),
    startedAt: null,
    finishedAt: null,
    result: null,
    lastError: null,
    uniqueKey: null,
    group: row.group,
    scheduledFor: null,
    scheduleKey: null,
    progress: null,
    lockedBy: null,
    lockedUntil: null,
    parentId,
  };
}
