import type { JobRepository } from './job.repository';
import { buildQueueStatements, type QueueStatements } from './sql/queue.statements';
import type { JobCounts } from '../interfaces/job.interface';
import type { QueueInfo } from '../interfaces/queue-info.interface';
import type { QueueLimits, QueueLimitsUpdate } from '../interfaces/processor-options.interface';
import { declare, withdraw, type DeclarationState, type ResolvedDeclarations } from '../limits/declarations';
import { canonicalJson, effectiveLimits, pickLimits } from '../limits/queue-limits';
import { translateDatabaseError } from './database-errors';

/** Counts this recent are read as they are; older ones are recounted first (by one caller at a time). */
export const COUNTS_MAX_AGE_MS = 2000;

interface RawQueueRow {
  name: string;
  paused: boolean;
  paused_at: number | null;
  counts: Partial<JobCounts> | null;
  counts_at: number | null;
  created_at: number;
  updated_at: number;
  declared: QueueLimits;
  overrides: QueueLimits;
}

interface RawDeclarationRow {
  name: string;
  declared: QueueLimits;
  declarations: DeclarationState;
  overrides: QueueLimits;
  now: number;
}

/**
 * How many times a declaration is read and written again when another worker wrote in between.
 * Each round one of the writers of a queue gets through, so this bounds how many workers may boot
 * at the very same moment; a random pause of up to `DECLARE_RETRY_JITTER_MS` between tries spreads them.
 */
const DECLARE_TRIES = 200;
const DECLARE_RETRY_JITTER_MS = 20;

/** What a worker's declaration (or its withdrawal) did to one queue's declared limits. */
export interface DeclarationOutcome {
  queue: string;
  /** The declared limits before, and the workers that held them (lapsed ones too). */
  before: QueueLimits;
  beforeBy: string[];
  /** The declared limits now, and the workers that hold them. */
  after: QueueLimits;
  afterBy: string[];
  /** The runtime overrides of the queue (they apply over `after`). */
  overrides: QueueLimits;
}

/** The queue registry (`<table>_queues`): pause and resume, and the list of queues with their counts. */
export class QueueRegistryRepository {
  private readonly statements: QueueStatements;

  constructor(private readonly jobs: JobRepository) {
    this.statements = buildQueueStatements(jobs.naming);
  }

  async register(queues: string[]): Promise<void> {
    if (queues.length > 0) await this.jobs.runStatement('registerQueues', this.statements.register, [queues]);
  }

  async pause(queue: string): Promise<QueueInfo> {
    const [row] = await this.jobs.runStatement<RawQueueRow>('pause', this.statements.pause, [queue]);
    return toQueueInfo(row);
  }

  /** The resumed queue, or null when it had no row (it was never paused). */
  async resume(queue: string): Promise<QueueInfo | null> {
    const [row] = await this.jobs.runStatement<RawQueueRow>('resume', this.statements.resume, [queue]);
    return row ? toQueueInfo(row) : null;
  }

  /**
   * Worker `workerId` declares each queue's limits in code (`limits`, by queue) for `leaseMs`; the
   * newest declaration among the live workers' becomes the queue's `declared` (see
   * lib/limits/declarations.ts). A queue without a row gets one (so the registry lists every queue
   * a worker runs, before its first claim). Renew before `leaseMs` passes.
   */
  declare(workerId: string, limits: Map<string, QueueLimits>, leaseMs: number): Promise<DeclarationOutcome[]> {
    return this.rewriteDeclarations([...limits.keys()], (queue, state, now) => declare(state, workerId, limits.get(queue)!, now, leaseMs), true);
  }

  /** Worker `workerId` stops: its declarations of `queues` no longer count. */
  withdraw(workerId: string, queues: string[]): Promise<DeclarationOutcome[]> {
    return this.rewriteDeclarations(queues, (_queue, state, now, current) => withdraw(state, workerId, now, current));
  }

  /**
   * Sets (a value) or removes (null) runtime overrides of queue `queue`'s limits, creating its row;
   * returns the queue. The input is validated by the caller.
   */
  async updateLimits(queue: string, update: QueueLimitsUpdate): Promise<QueueInfo> {
    const set: Record<string, unknown> = {};
    const removed: string[] = [];
    for (const [key, value] of Object.entries(update)) {
      if (value === null) removed.push(key);
      else if (value !== undefined) set[key] = value;
    }
    const [row] = await this.jobs.runStatement<RawQueueRow>('updateQueue', this.statements.override, [queue, JSON.stringify(set), removed]);
    return toQueueInfo(row);
  }

  /**
   * The one place that writes `declared` (and the declarations it is chosen from): read, change,
   * and write back only if nobody wrote in between, else again.
   */
  private async rewriteDeclarations(
    queues: string[],
    change: (queue: string, state: DeclarationState, now: number, current: QueueLimits) => ResolvedDeclarations,
    createRows = false,
  ): Promise<DeclarationOutcome[]> {
    const outcomes: DeclarationOutcome[] = [];
    let todo = queues;
    for (let tries = 1; todo.length > 0; tries++) {
      if (tries > DECLARE_TRIES) {
        throw translateDatabaseError('declareLimits', new Error(`nestjs-pg-queue: the declarations of ${todo.join(', ')} kept changing during ${DECLARE_TRIES} tries`));
      }
      // NOTE: on the worker's own pool, like its other statements: they never wait behind the
      // app's queries, and a shutdown on a silent network closes that pool's connections by force.
      // NOTE: with `createRows`, a queue without a row gets one in the same statement (at boot, and
      // for a row deleted while the worker runs, by hand say): every queue of the worker is listed.
      const read = createRows ? this.statements.registerAndReadDeclarations : this.statements.readDeclarations;
      const rows = await this.jobs.runStatement<RawDeclarationRow>('declareLimits', read, [todo], 'worker');
      const missed: string[] = [];
      if (createRows && rows.length < todo.length) {
        // NOTE: inserted by another transaction after this statement's snapshot: read again.
        const found = new Set(rows.map((r) => r.name));
        missed.push(...todo.filter((q) => !found.has(q)));
      }
      for (const row of rows) {
        const previous = row.declarations ?? {};
        const before = pickLimits(row.declared ?? {});
        const resolved = change(row.name, previous, Number(row.now), before);
        const written = await this.jobs.runStatement('declareLimits', this.statements.writeDeclarations, [
          row.name,
          JSON.stringify(resolved.declared),
          JSON.stringify(resolved.state),
          JSON.stringify(previous),
        ], 'worker');
        if (written.length === 0) {
          missed.push(row.name);
          continue;
        }
        const beforeText = canonicalJson(before);
        outcomes.push({
          queue: row.name,
          before,
          beforeBy: Object.entries(previous.workers ?? {}).filter(([, w]) => w.limits === beforeText).map(([id]) => id),
          after: resolved.declared,
          afterBy: resolved.declaredBy,
          overrides: pickLimits(row.overrides ?? {}),
        });
      }
      todo = missed;
      if (todo.length > 0) await new Promise((resolve) => setTimeout(resolve, Math.random() * DECLARE_RETRY_JITTER_MS));
    }
    return outcomes;
  }

  async list(): Promise<QueueInfo[]> {
    await this.jobs.runStatement('getQueues', this.statements.refreshCounts, [`nestjs-pg-queue:counts:${this.jobs.naming.qualified}`, COUNTS_MAX_AGE_MS]);
    return (await this.jobs.runStatement<RawQueueRow>('getQueues', this.statements.list, [])).map(toQueueInfo);
  }
}

function toQueueInfo(row: RawQueueRow): QueueInfo {
  const counts = row.counts ?? {};
  return {
    name: row.name,
    paused: row.paused,
    pausedAt: row.paused_at === null ? null : new Date(row.paused_at),
    counts: {
      pending: counts.pending ?? 0,
      active: counts.active ?? 0,
      completed: counts.completed ?? 0,
      failed: counts.failed ?? 0,
      cancelled: counts.cancelled ?? 0,
      blocked: counts.blocked ?? 0,
    },
    countsAt: row.counts_at === null ? null : new Date(row.counts_at),
    createdAt: new Date(row.created_at),
    updatedAt: new Date(row.updated_at),
    ...limitsOf(row),
  };
}

function limitsOf(row: RawQueueRow): Pick<QueueInfo, 'limits' | 'declared' | 'overrides'> {
  // NOTE: only the limits' keys: other keys of these columns are no limit (and none of ours).
  const declared = pickLimits(row.declared ?? {});
  const overrides = pickLimits(row.overrides ?? {});
  return { limits: effectiveLimits(declared, overrides), declared, overrides };
}
