import type { Job } from '../../lib';
import type { JobRepository, LimitedClaim } from '../../lib/database/job.repository';
import { MIN_SETTLING_ROOM } from '../../lib/queue.constants';
import { AttemptAbort } from '../../lib/worker/attempt-abort';
import type { AttemptHooks } from '../../lib/worker/job-executor';
import { QueuePoller, type ClaimedJobRunner } from '../../lib/worker/queue-poller';
import type { RunningJob } from '../../lib/worker/running-jobs';

// The poller's back-pressure, in isolation: how many attempts may be done with their outcome not
// yet written before it stops refilling its slots. The claims here come from an in-memory stand-in
// for the repository (the claim statements themselves are tested against PostgreSQL elsewhere);
// what is tested is the poller's own accounting of slots, which no database can observe.

/** A repository that hands out `total` jobs, as many per claim as asked for; a queue without limits. */
function jobSource(total: number) {
  let next = 1;
  const take = (limit: number): Job[] => {
    const jobs: Job[] = [];
    while (jobs.length < limit && next <= total) jobs.push({ id: String(next++), queue: 'q', name: 'x', claims: 1 } as Job);
    return jobs;
  };
  const repository = {
    claimLimited: async (_queue: string, limit: number): Promise<LimitedClaim> => ({
      jobs: take(limit), waitMs: null, more: true, limited: false, full: false, permits: false,
    }),
    claim: async (_queue: string, limit: number): Promise<Job[]> => take(limit),
  };
  return { repository: repository as unknown as JobRepository, claimed: () => next - 1 };
}

/** A runner whose handlers end at once and whose outcome writes stay in flight until `settleAll`. */
function stuckWrites() {
  const unsettled: AttemptHooks[] = [];
  let running = 0;
  let maxRunning = 0;
  const runner: ClaimedJobRunner = {
    admit: (job) => ({ job, abort: new AttemptAbort(), leaseExpiresAt: Infinity, handlerDone: false, abandoned: false, removed: false }) as RunningJob,
    run: (_entry, hooks) => {
      maxRunning = Math.max(maxRunning, ++running);
      queueMicrotask(() => {
        running--;
        hooks.handlerDone(undefined);
        unsettled.push(hooks);
      });
    },
    handBack: () => undefined,
    drop: () => undefined,
    writeOutcome: async () => 'written',
  };
  return {
    runner,
    unsettled: () => unsettled.length,
    maxRunning: () => maxRunning,
    settleAll: () => unsettled.splice(0).forEach((hooks) => hooks.settled()),
  };
}

/** Resolves once `value()` has not changed for a few event-loop turns (the poller has gone quiet). */
async function quiet(value: () => number): Promise<number> {
  let last = -1;
  let still = 0;
  const deadline = Date.now() + 5000;
  while (still < 5) {
    if (Date.now() > deadline) throw new Error(`still changing after 5 s (${value()})`);
    await new Promise((resolve) => setImmediate(resolve));
    const now = value();
    still = now === last ? still + 1 : 0;
    last = now;
  }
  return last;
}

describe('QueuePoller: back-pressure of outcomes not yet written', () => {
  const settings = {
    queue: 'q', concurrency: 10, workerId: 'w', lockDurationMs: 30_000, pollIntervalMs: 60_000,
    defaults: { maxAttempts: 3, backoff: { type: 'fixed' as const, delayMs: 1000 }, timeoutMs: null },
    claimAhead: false as const,
  };

  it('refills its slots until a floor of outcomes waits, then claims nothing more until writes settle', async () => {
    const source = jobSource(5000);
    const writes = stuckWrites();
    const poller = new QueuePoller(settings, source.repository, writes.runner);
    poller.start();
    try {
      // NOTE: at concurrency 10, what one write in flight gathers is many times the concurrency: the
      // bound is a fixed floor, not twice the concurrency.
      expect(await quiet(writes.unsettled)).toBe(MIN_SETTLING_ROOM);
      expect(source.claimed()).toBe(MIN_SETTLING_ROOM);
      expect(writes.maxRunning()).toBeLessThanOrEqual(settings.concurrency);

      // The writes land: the slots fill again, up to the bound again.
      writes.settleAll();
      expect(await quiet(writes.unsettled)).toBe(MIN_SETTLING_ROOM);
      expect(source.claimed()).toBe(2 * MIN_SETTLING_ROOM);
      expect(writes.maxRunning()).toBeLessThanOrEqual(settings.concurrency);
    } finally {
      await poller.stop();
    }
  });

  it('bounds a large concurrency by twice the concurrency', async () => {
    const source = jobSource(5000);
    const writes = stuckWrites();
    const poller = new QueuePoller({ ...settings, concurrency: 800 }, source.repository, writes.runner);
    poller.start();
    try {
      expect(await quiet(writes.unsettled)).toBe(1600);
    } finally {
      await poller.stop();
    }
  });
});
