import type { JobRepository } from '../database/job.repository';
import { PeriodicTask } from './maintenance/periodic-task';
import type { QueuePoller } from './queue-poller';

/**
 * The poll of a whole process: every `pollIntervalMs`, one statement asks which of the idle queues
 * have due jobs, and only their pollers claim. It is how jobs are found without LISTEN (or when a
 * notification was missed), and how a delayed job is found that no notification announced.
 *
 * NOTE: a poll timer per queue (as until 2026-12) cost one claim per queue per interval, all in
 * phase: 200 idle processors in one process made about 187 transactions/s on an idle database. One
 * probe for all of them costs one statement per interval whatever their number; a lone idle queue
 * is simply woken, its claim being the probe, when that claim is the limited one (which tells
 * whether the queue still has limits); otherwise it is probed too (see below).
 */
export class IdleQueueProbe extends PeriodicTask {
  constructor(repository: JobRepository, pollers: ReadonlyMap<string, QueuePoller>, intervalMs: number) {
    super('Queue poll', intervalMs, async () => {
      const idle = [...pollers.values()].filter((p) => p.idle);
      if (idle.length === 0) return;
      // NOTE: a lone queue claimed with the limited claim is simply woken: that claim says whether
      // it still has limits. One claimed the plain way is asked about through the probe, which
      // tells whether it has limits now (the plain claim would take nothing, and say nothing).
      if (idle.length === 1 && idle[0].limited) {
        idle[0].wake();
        return;
      }
      for (const { queue, limited } of await repository.findQueuesWithDueJobs(idle.map((p) => p.queue))) {
        const poller = pollers.get(queue);
        poller?.learnLimited(limited);
        poller?.wake();
      }
    });
  }
}
