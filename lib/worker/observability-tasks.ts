import { hostname } from 'node:os';
import type { JobRepository } from '../database/job.repository';
import { StatsRepository } from '../database/stats.repository';
import { WorkerRegistryRepository } from '../database/worker-registry.repository';
import type { ResolvedQueueOptions, ResolvedWorkerOptions } from '../queue-options.resolver';
import type { OutcomeTally } from '../observability/outcome-tally';
import { StatsPruner } from './maintenance/stats-pruner';
import { StatsRecorder } from './stats-recorder';
import { WorkerPresenceBeat } from './worker-presence';

/** What the worker tells of itself to the registry. */
export interface WorkerSelf {
  id: string;
  queues: Record<string, number>;
  running: () => number;
}

/**
 * Starts the worker's observability units: its row in the worker registry and, unless `stats` is
 * off, the rollup writer and their pruner (whose first run `deferFirstRun` places). Resolves once
 * the worker is listed (or its first beat failed: it beats again); returns them for the worker to
 * stop at shutdown.
 */
export async function startObservabilityTasks(
  repository: JobRepository,
  options: ResolvedQueueOptions,
  settings: ResolvedWorkerOptions,
  tally: OutcomeTally,
  self: WorkerSelf,
  /** Where the pruner's first run goes: the worker runs it after its first claims. */
  deferFirstRun: (run: () => Promise<void>) => void = (run) => void run(),
): Promise<{ stop(): Promise<void> }[]> {
  const units: { stop(): Promise<void> }[] = [];
  if (options.stats) {
    const stats = new StatsRepository(repository);
    const recorder = new StatsRecorder(stats, tally, options.stats.flushIntervalMs);
    const pruner = new StatsPruner(stats, options.stats.retentionMs);
    recorder.start();
    pruner.start();
    deferFirstRun(() => pruner.runOnce());
    units.push(recorder, pruner);
  }
  const host = hostname();
  const beat = new WorkerPresenceBeat(
    new WorkerRegistryRepository(repository),
    () => ({ id: self.id, host, pid: process.pid, queues: self.queues, running: self.running() }),
    settings.heartbeatIntervalMs,
    settings.lockDurationMs,
  );
  beat.start();
  await beat.runOnce();
  units.push(beat);
  return units;
}
