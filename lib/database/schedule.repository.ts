import type { JobRepository } from './job.repository';
import { buildScheduleStatements, type ScheduleStatements } from './sql/schedule.statements';
import type { ScheduleCatchUp, ScheduleInfo, ScheduleOverlap } from '../interfaces/schedule.interface';
import type { ScheduleRow } from '../schedules/schedule-spec.validator';

/** A schedule row as the statements return it: timestamps as epoch ms, the rest as stored. */
interface RawScheduleRow extends Pick<ScheduleInfo, 'key' | 'queue' | 'name' | 'cron' | 'tz' | 'data' | 'options' | 'overlap' | 'source' | 'paused'> {
  catch_up: ScheduleCatchUp;
  catch_up_limit: number;
  declared_by: string | null;
  next_run_at: number;
  last_run_at: number | null;
  last_job_id: string | null;
  created_at: number;
  updated_at: number;
}

/** A due schedule as the enqueuer takes it (see `takeDue`). */
export interface DueScheduleRow {
  key: string;
  cron: string;
  tz: string;
  catch_up: ScheduleCatchUp;
  catch_up_limit: number;
  overlap: ScheduleOverlap;
  next_run_at: number;
  unfinished: boolean;
  now: number;
}

/** What one enqueuer tick decided for the schedules it took. */
export interface ScheduleAdvance {
  /** One entry per slot to enqueue. */
  slots: { key: string; slotMs: number }[];
  /** One entry per schedule taken: the next run it was taken with, and its new one. */
  moves: { key: string; takenMs: number; nextMs: number }[];
}

/** A code-declared schedule to reconcile, with the next slot of its expression. */
export interface DeclaredScheduleRow extends ScheduleRow {
  declaredBy: string;
  nextRunAt: Date;
}

/** The schedule table (`<table>_schedules`) and the jobs its schedules enqueue. */
export class ScheduleRepository {
  private readonly statements: ScheduleStatements;

  constructor(private readonly jobs: JobRepository) {
    this.statements = buildScheduleStatements(jobs.naming);
  }

  /** The database's clock, epoch ms. */
  async now(): Promise<number> {
    const [row] = await this.jobs.runStatement<{ now: number }>('schedule', this.statements.now, []);
    return Number(row.now);
  }

  /** Creates or changes a runtime schedule; null when the key is a code-declared schedule's. */
  async upsertRuntime(row: ScheduleRow, nextRunAt: Date): Promise<ScheduleInfo | null> {
    const [saved] = await this.jobs.runStatement<RawScheduleRow>('schedule', this.statements.upsertRuntime, [
      row.key, row.queue, row.name, row.cron, row.tz, row.data, row.options, row.catchUp, row.catchUpLimit, row.overlap, nextRunAt.toISOString(),
    ]);
    return saved ? toScheduleInfo(saved) : null;
  }

  /**
   * Reconciles the schedules declared in code for `queues` (this process's): upserts `declared`,
   * deletes the code schedules of those queues that are no longer declared, in one transaction.
   * Returns what changed, and the declared keys held by runtime schedules (left alone).
   */
  async reconcile(queues: string[], declared: DeclaredScheduleRow[]): Promise<{ created: string[]; updated: string[]; deleted: string[]; heldByRuntime: string[] }> {
    const keys = declared.map((d) => d.key);
    return this.jobs.runTransaction('schedule', async (query) => {
      await query(this.statements.reconcileLock, [`nestjs-pg-queue:schedules:${this.jobs.naming.qualified}`]);
      const heldByRuntime = keys.length === 0 ? [] : (await query<{ key: string }>(this.statements.runtimeKeys, [keys])).map((r) => r.key);
      const json = [...declared]
        .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))
        .filter((d) => !heldByRuntime.includes(d.key))
        .map(
          (d) =>
            `{"key":${JSON.stringify(d.key)},"queue":${JSON.stringify(d.queue)},"name":${JSON.stringify(d.name)},"cron":${JSON.stringify(d.cron)},` +
            `"tz":${JSON.stringify(d.tz)},"data":${d.data},"options":${d.options},"catch_up":"${d.catchUp}","catch_up_limit":${d.catchUpLimit},` +
            `"overlap":"${d.overlap}","declared_by":${JSON.stringify(d.declaredBy)},"next_run_at":"${d.nextRunAt.toISOString()}"}`,
        );
      const written = json.length === 0 ? [] : await query<{ key: string; created: boolean }>(this.statements.upsertDeclared, [`[${json.join(',')}]`]);
      const deleted = queues.length === 0 ? [] : (await query<{ key: string }>(this.statements.deleteUndeclared, [queues, keys])).map((r) => r.key);
      return {
        created: written.filter((w) => w.created).map((w) => w.key),
        updated: written.filter((w) => !w.created).map((w) => w.key),
        deleted,
        heldByRuntime,
      };
    });
  }

  /** Deletes a schedule; what it was (its source and declaring method), or null when there was none of that key. */
  async delete(key: string): Promise<{ source: 'code' | 'runtime'; declared_by: string | null } | null> {
    const [row] = await this.jobs.runStatement<{ source: 'code' | 'runtime'; declared_by: string | null }>('schedule', this.statements.delete, [key]);
    return row ?? null;
  }

  async get(key: string): Promise<ScheduleInfo | null> {
    const [row] = await this.jobs.runStatement<RawScheduleRow>('schedule', this.statements.get, [key]);
    return row ? toScheduleInfo(row) : null;
  }

  async list(): Promise<ScheduleInfo[]> {
    return (await this.jobs.runStatement<RawScheduleRow>('schedule', this.statements.list, [])).map(toScheduleInfo);
  }

  async pause(key: string): Promise<ScheduleInfo | null> {
    const [row] = await this.jobs.runStatement<RawScheduleRow>('schedule', this.statements.pause, [key]);
    return row ? toScheduleInfo(row) : null;
  }

  /** Resumes; a next run in the past moves to `nextRunAt`. */
  async resume(key: string, nextRunAt: Date): Promise<ScheduleInfo | null> {
    const [row] = await this.jobs.runStatement<RawScheduleRow>('schedule', this.statements.resume, [key, nextRunAt.toISOString()]);
    return row ? toScheduleInfo(row) : null;
  }

  /** Enqueues one run of the schedule now; its job's id, or null when there is no such schedule. */
  async trigger(key: string): Promise<string | null> {
    const [row] = await this.jobs.runStatement<{ id: string }>('schedule', this.statements.trigger, [key]);
    return row?.id ?? null;
  }

  /** How long until the earliest unpaused schedule is due (ms; 0 when due now), or null when none. On the worker's pool. */
  async nextDueInMs(): Promise<number | null> {
    const [row] = await this.jobs.runWorkerStatement<{ in_ms: number | null }>('schedule', this.statements.nextDue, []);
    return row?.in_ms ?? null;
  }

  /**
   * One enqueuer tick: takes up to `limit` due schedules (locked, SKIP LOCKED), lets `decide`
   * compute their slots and next runs, enqueues and moves them, all in one transaction on the
   * worker's pool. If a schedule's next run changed meanwhile (the compare-and-set misses), the
   * whole tick rolls back and nothing is enqueued. `decide` may leave some of the schedules taken
   * out of its moves (they stay due, for the next tick). Returns how many schedules were taken and
   * moved, and how many jobs inserted.
   */
  async tick(limit: number, decide: (due: DueScheduleRow[]) => ScheduleAdvance): Promise<{ taken: number; moved: number; inserted: number }> {
    return this.jobs.runTransaction(
      'schedule',
      async (query) => {
        const due = await query<DueScheduleRow>(this.statements.takeDue, [limit]);
        if (due.length === 0) return { taken: 0, moved: 0, inserted: 0 };
        const { slots, moves } = decide(due);
        const [result] = await query<{ moved: number; inserted: number }>(this.statements.advance, [
          slots.map((s) => s.key),
          slots.map((s) => s.slotMs),
          moves.map((m) => m.key),
          moves.map((m) => m.takenMs),
          moves.map((m) => m.nextMs),
        ]);
        if (result.moved !== moves.length) throw new Error(`nestjs-pg-queue: ${moves.length - result.moved} schedule(s) moved by someone else during a tick; rolled back`);
        return { taken: due.length, moved: result.moved, inserted: result.inserted };
      },
      true,
    );
  }
}

function toScheduleInfo(row: RawScheduleRow): ScheduleInfo {
  return {
    key: row.key,
    queue: row.queue,
    name: row.name,
    cron: row.cron,
    tz: row.tz,
    data: row.data,
    options: row.options,
    catchUp: row.catch_up,
    catchUpLimit: row.catch_up_limit,
    overlap: row.overlap,
    nextRunAt: new Date(Number(row.next_run_at)),
    lastRunAt: row.last_run_at === null ? null : new Date(Number(row.last_run_at)),
    lastJobId: row.last_job_id,
    paused: row.paused,
    source: row.source,
    declaredBy: row.declared_by,
    createdAt: new Date(Number(row.created_at)),
    updatedAt: new Date(Number(row.updated_at)),
  };
}
