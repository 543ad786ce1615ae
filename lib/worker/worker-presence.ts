import { Logger } from '@nestjs/common';
import type { WorkerPresence, WorkerRegistryRepository } from '../database/worker-registry.repository';
import { PeriodicTask } from './maintenance/periodic-task';

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
    try {
      await this.registry.remove(this.presence().id);
    } catch (error) {
      // NOTE: the row then expires like a killed worker's.
      this.log.warn(`Could not remove this worker from the worker registry (${(error as Error)?.message ?? error}); it expires on its own`);
    }
  }
}
