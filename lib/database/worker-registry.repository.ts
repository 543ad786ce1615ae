import type { JobRepository } from './job.repository';
import { buildWorkerStatements, type WorkerStatements } from './sql/worker.statements';
import type { WorkerInfo } from '../interfaces/observability.interface';

interface RawWorkerRow {
  id: string;
  host: string;
  pid: number;
  queues: Record<string, number>;
  running: number;
  started_at: number;
  heartbeat_at: number;
  expires_at: number;
}

/** What a worker says of itself on each beat. */
export interface WorkerPresence {
  id: string;
  host: string;
  pid: number;
  queues: Record<string, number>;
  running: number;
}

/** The worker registry (`<table>_workers`): the live worker processes of the table. */
export class WorkerRegistryRepository {
  private readonly statements: WorkerStatements;

  constructor(private readonly jobs: JobRepository) {
    this.statements = buildWorkerStatements(jobs.naming);
  }

  /** Records `worker` as alive for `ttlMs` more and prunes expired workers (one statement). */
  async beat(worker: WorkerPresence, ttlMs: number): Promise<void> {
    await this.jobs.runWorkerStatement('workerBeat', this.statements.beat, [
      worker.id,
      worker.host,
      worker.pid,
      JSON.stringify(worker.queues),
      worker.running,
      ttlMs,
    ]);
  }

  async remove(id: string): Promise<void> {
    await this.jobs.runWorkerStatement('workerBeat', this.statements.remove, [id]);
  }

  async list(): Promise<WorkerInfo[]> {
    const rows = await this.jobs.runStatement<RawWorkerRow>('getWorkers', this.statements.list, []);
    return rows.map((row) => ({
      id: row.id,
      host: row.host,
      pid: row.pid,
      queues: row.queues,
      running: row.running,
      startedAt: new Date(row.started_at),
      lastHeartbeatAt: new Date(row.heartbeat_at),
      expiresAt: new Date(row.expires_at),
    }));
  }
}
