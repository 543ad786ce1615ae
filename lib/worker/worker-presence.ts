import { Logger } from '@nestjs/common';
import type { WorkerPresence, WorkerRegistryRepository } from '../database/worker-registry.repository';
import { PeriodicTask } from './maintenance/periodic-task';
import { withTimeout } from './with-timeout';

/** How long the graceful stop waits for the registry row's removal (the database may be gone). */
export const PRESENCE_REMOVE_GRACE_MS = 1000;

/** A worker that stopped beating drops out of the registry after this many of its lease lengths. */
export const WORKER_EXPIRY_LEASES = 3;

/**
 * Keeps this process's row in the worker registry: written at start, beaten every heartbeat
 * interval (one small upsert that also prunes the rows of workers that expired: killed ones, which
 * no graceful stop removed), and deleted at graceful stop.
 *
 * NOTE: its own statement rather than a share of the lease heartbeat's: that one runs only while
 * jobs run (an idle worker must stay listed) and sits on the job table's hot rows.
 */
export class WorkerPresenceBeat extends PeriodicTask {
  private readonly log = new Logger('QueueWorker');

  constructor(
    private readonly registry: WorkerRegistryRepository,
    private readonly presence: () => WorkerPresence,
    intervalMs: number,
    lockDurationMs: number,
  ) {
    super('Worker registry', intervalMs, () => registry.beat(presence(), WORKER_EXPIRY_LEASES * lockDurationMs));
  }

  override async stop(): Promise<void> {
    await super.stop();
    let failure: unknown;
    const removed = this.registry.remove(this.presence().id).catch((error: unknown) => (failure = error ?? 'failed'));
    // NOTE: bounded well inside the shutdown's own budget; the row then expires like a killed worker's.
    const inTime = await withTimeout(removed, PRESENCE_REMOVE_GRACE_MS);
    if (!inTime || failure !== undefined) {
      const why = inTime ? ((failure as Error)?.message ?? String(failure)) : `no answer within ${PRESENCE_REMOVE_GRACE_MS} ms`;
      this.log.warn(`Could not remove this worker from the worker registry (${why}); it expires on its own`);
    }
  }
}
