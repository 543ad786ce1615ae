import type { QueueLimits } from '../interfaces/processor-options.interface';
import { canonicalJson } from './queue-limits';

/**
 * What the queue registry keeps of the workers' declarations of one queue's limits (its
 * `declarations` column), from which its `declared` column is chosen.
 */
export interface DeclarationState {
  /**
   * Per worker process: the limits its processors declare (canonical JSON) and until when the
   * declaration holds (epoch ms, database clock) unless renewed, like a job's lease.
   */
  workers?: Record<string, { limits: string; until: number }>;
  /** Per declaration (canonical JSON) that a live worker holds: since when one has held it without a break. */
  since?: Record<string, number>;
}

/** A declaration state after a change, and the declaration it makes the queue's. */
export interface ResolvedDeclarations {
  state: DeclarationState;
  /** The limits that go to `declared`: the newest live declaration's. */
  declared: QueueLimits;
  /** The workers that hold the winning declaration (empty when no worker is live). */
  declaredBy: string[];
}

/**
 * Worker `workerId` declares `limits` for `leaseMs` from `now`: its entry is written, entries whose
 * time ran out are dropped, and the declaration held by live workers for the shortest time wins.
 *
 * NOTE: "shortest time" is the rule that survives a rolling deploy. The first process of a new
 * version declares something no live worker held before: it wins at once. A process of the old
 * version restarting meanwhile declares what other old processes still hold, since long before:
 * it does not win back. Once the last old process is gone its declaration is forgotten, so a
 * rollback (the old code deployed again) wins as any new deploy does. No boot order, clock of an
 * app host or version string is involved: only the database's clock and what live workers hold.
 */
export function declare(previous: DeclarationState, workerId: string, limits: QueueLimits, now: number, leaseMs: number): ResolvedDeclarations {
  const workers = live(previous, now);
  workers[workerId] = { limits: canonicalJson(limits), until: now + leaseMs };
  return resolve(previous, workers, now);
}

/** Worker `workerId` stops (graceful shutdown): its declaration no longer counts. */
export function withdraw(previous: DeclarationState, workerId: string, now: number, current: QueueLimits): ResolvedDeclarations {
  const workers = live(previous, now);
  delete workers[workerId];
  const resolved = resolve(previous, workers, now);
  // NOTE: with no worker left, the last declaration stays: the next worker to boot replaces it.
  return Object.keys(workers).length === 0 ? { ...resolved, declared: current } : resolved;
}

function live(state: DeclarationState, now: number): Record<string, { limits: string; until: number }> {
  const workers: Record<string, { limits: string; until: number }> = {};
  for (const [id, entry] of Object.entries(state.workers ?? {})) if (entry.until > now) workers[id] = entry;
  return workers;
}

function resolve(previous: DeclarationState, workers: Record<string, { limits: string; until: number }>, now: number): ResolvedDeclarations {
  const since: Record<string, number> = {};
  for (const { limits } of Object.values(workers)) since[limits] ??= previous.since?.[limits] ?? now;
  let winner: string | undefined;
  for (const [limits, at] of Object.entries(since)) {
    // Ties (two declarations first seen in one millisecond) go to the greater text: any fixed rule.
    if (winner === undefined || at > since[winner] || (at === since[winner] && limits > winner)) winner = limits;
  }
  return {
    state: { workers, since },
    declared: winner === undefined ? {} : (JSON.parse(winner) as QueueLimits),
    declaredBy: Object.keys(workers).filter((id) => workers[id].limits === winner),
  };
}
