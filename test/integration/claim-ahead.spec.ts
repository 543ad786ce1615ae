import type { INestApplicationContext } from '@nestjs/common';
import { Handle, JobState, Processor, QueueService, type ActiveJob, type WorkerOptions } from '../../lib';
import { QueueWorker } from '../../lib/worker/worker.service';
import { createTestApp } from './helpers/app';
import { dropSchema, sql, uniqueSchema } from './helpers/database';
import { waitFor } from './helpers/wait-for';

const schema = uniqueSchema('ahead');
/** Long enough that nothing here is found by a poll: wake-ups only. */
const NO_POLL = 60_000;
/** Quick jobs that drain first, so the queue has measured quick handlers and claims ahead. */
const WARM_UP = 20_000;
/** Quick jobs added behind the gate: they wait in the buffer while the gate holds the one slot. */
const BEHIND = 5;
/** The fewest of them a test works with (when the buffer shrank before the claim that took the gate). */
const MIN_BEHIND = 3;

interface Gate {
  started: boolean;
  release: () => void;
  released: Promise<void>;
}
function newGate(): Gate {
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  return { started: false, release, released };
}

/**
 * A processor of `queue` (concurrency `concurrency`): `fast` records its job id, `gate` holds its
 * slot until released (or aborted), `slow` sleeps `data.ms`.
 */
function processorFor(queue: string, concurrency: number, ran: string[], gate: () => Gate) {
  @Processor(queue, { concurrency })
  class GatedProcessor {
    @Handle('fast')
    fast(job: ActiveJob) {
      ran.push(job.id);
    }

    @Handle('gate')
    async hold(job: ActiveJob) {
      const g = gate();
      g.started = true;
      await Promise.race([g.released, new Promise((resolve) => job.signal.addEventListener('abort', resolve, { once: true }))]);
    }

    @Handle('slow')
    async slow(job: ActiveJob<{ ms: number }>) {
      await new Promise((resolve) => setTimeout(resolve, job.data.ms));
      ran.push(job.id);
    }
  }
  return GatedProcessor;
}

interface Rig {
  app: INestApplicationContext;
  queue: QueueService;
  ran: string[];
  gate: Gate;
  stats: () => ReturnType<QueueWorker['claimAheadStats']>[string];
}

describe('claim-ahead buffer', () => {
  const apps: INestApplicationContext[] = [];
  let producer: QueueService;

  beforeAll(async () => {
    const app = await createTestApp({ schema, queue: { worker: false } });
    apps.push(app);
    producer = app.get(QueueService);
  });
  afterAll(async () => {
    for (const app of apps.reverse()) await app.close().catch(() => undefined);
    await dropSchema(schema);
  });

  async function boot(queueName: string, concurrency: number, worker: WorkerOptions = {}): Promise<Rig> {
    const ran: string[] = [];
    const rig = { ran, gate: newGate() } as Rig;
    const app = await createTestApp({
      schema,
      providers: [processorFor(queueName, concurrency, ran, () => rig.gate)],
      queue: { worker: { pollIntervalMs: NO_POLL, ...worker } },
    });
    apps.push(app);
    rig.app = app;
    rig.queue = app.get(QueueService);
    rig.stats = () => app.get(QueueWorker).claimAheadStats()[queueName];
    return rig;
  }

  const rowsOf = (ids: string[]) =>
    sql<{ id: string; state: string; attempts: number; claims: number }>(
      `SELECT id::text, state, attempts, claims FROM "${schema}".queue_jobs WHERE id = ANY($1::bigint[]) ORDER BY id`,
      [ids],
    );

  async function waitCompleted(ids: string[], timeoutMs = 15_000): Promise<void> {
    await waitFor(`${ids.length} job(s) completed`, async () => (await rowsOf(ids)).every((r) => r.state === 'completed'), timeoutMs);
  }

  /**
   * Starts a drain of WARM_UP quick jobs and, once the queue claims ahead, adds a gate (highest
   * priority) and BEHIND quick jobs (next priority) in one insert: the one slot ends up holding the
   * gate, and the jobs behind it wait in the buffer (with whatever quick jobs the buffer also
   * held). Returns the ids of the gate and the jobs behind it.
   *
   * NOTE: while the drain runs: after an idle spell a queue starts again without a buffer.
   */
  async function fillBuffer(rig: Rig, queueName: string, observe = true): Promise<{ gateId: string; behind: string[] }> {
    await producer.addBulk(Array.from({ length: WARM_UP }, (_, i) => ({ queue: queueName, name: 'fast', data: { i } })));
    // NOTE: a claim is sent when the buffer is half empty, so it takes at least half the buffer's
    // size: from twice the gate and the jobs behind it, the claim that takes the gate takes them
    // all, unless the buffer shrank meanwhile (a loaded machine): then those it took.
    for (let attempt = 1; ; attempt++) {
      await waitFor('the queue to claim ahead', () => rig.stats().ahead >= 4 * (BEHIND + 1), 15_000, 1);
      const [gate, ...added] = await producer.addBulk([
        { queue: queueName, name: 'gate', data: { i: -1 }, options: { priority: 10 } },
        ...Array.from({ length: BEHIND }, (_, i) => ({ queue: queueName, name: 'fast', data: { i }, options: { priority: 5 } })),
      ]);
      if (!observe) {
        await waitFor('the gate to run', () => rig.gate.started);
        return { gateId: gate.id, behind: added.map((j) => j.id) };
      }
      const active = async () => (await rowsOf(added.map((j) => j.id))).filter((r) => r.state === 'active').map((r) => r.id);
      try {
        await waitFor('the gate to run and jobs behind it to be buffered', async () =>
          rig.gate.started && rig.stats().buffered >= MIN_BEHIND && (await active()).length >= MIN_BEHIND, 5_000);
      } catch (error) {
        // NOTE: setting up, not the behaviour under test: the buffer's size adapts, and on a loaded
        // machine it can shrink to under MIN_BEHIND just as the gate is claimed. Let that gate go
        // and try again while the drain goes on.
        if (attempt === 3) throw error;
        rig.gate.release();
        rig.gate = newGate();
        await producer.addBulk(Array.from({ length: WARM_UP }, (_, i) => ({ queue: queueName, name: 'fast', data: { i } })));
        continue;
      }
      const ids = { gateId: gate.id, behind: await active() };
      const behind = ids.behind;
      // Buffered jobs are real claimed rows: active, leased to this worker, attempt counted.
      const rows = await rowsOf(ids.behind);
      expect(rows.map((r) => [r.state, r.attempts])).toEqual(behind.map(() => ['active', 1]));
      expect(rig.stats().buffered).toBeGreaterThanOrEqual(behind.length);
      expect(rig.ran.filter((id) => ids.behind.includes(id))).toEqual([]);
      return ids;
    }
  }

  it('a queue of quick handlers claims ahead; each buffered job waits about one claim round trip', async () => {
    const rig = await boot('quick', 4);
    const jobs = await producer.addBulk(Array.from({ length: 3000 }, (_, i) => ({ queue: 'quick', name: 'fast', data: { i } })));
    await waitCompleted(jobs.map((j) => j.id), 30_000);
    expect(new Set(rig.ran).size).toBe(3000);
    const stats = rig.stats();
    expect(stats.started).toBeGreaterThan(1000);
    const meanWaitMs = stats.totalWaitMs / stats.started;
    // NOTE: printed for the report. Bounded loosely: this drain is short (its first claims, before
    // the buffer's size settles, weigh a lot) and runs next to other test files, which stretch
    // both figures; 20,000-job bench drains measure 0.35-0.93 of a round trip.
    process.stdout.write(`claim-ahead: ${stats.started} of 3000 jobs via the buffer, mean wait ${meanWaitMs.toFixed(2)} ms, claim round trip ${stats.roundTripMs.toFixed(2)} ms\n`);
    expect(meanWaitMs).toBeLessThanOrEqual(3 * stats.roundTripMs + 10);
  });

  it('a queue of handlers of a few ms buffers only what its slots run in about a round trip', async () => {
    const rig = await boot('medium', 4);
    const jobs = await producer.addBulk(Array.from({ length: 400 }, (_, i) => ({ queue: 'medium', name: 'slow', data: { ms: 2, i } })));
    await waitCompleted(jobs.map((j) => j.id), 30_000);
    const stats = rig.stats();
    expect(stats.started).toBeGreaterThan(0);
    const meanWaitMs = stats.totalWaitMs / stats.started;
    process.stdout.write(`claim-ahead (2 ms handlers): ${stats.started} of 400 jobs via the buffer, mean wait ${meanWaitMs.toFixed(2)} ms, claim round trip ${stats.roundTripMs.toFixed(2)} ms, slot ${stats.slotMs.toFixed(2)} ms\n`);
    // NOTE: a buffer as large as for no-op jobs (996) would hold these jobs for up to a quarter of
    // a second each (4 slots, 2-3 ms a job), until handed back as stalled.
    expect(meanWaitMs).toBeLessThanOrEqual(3 * stats.roundTripMs + 10);
    expect(stats.handedBack).toBe(0);
  });

  it('a queue whose handlers are slow never claims ahead: no claim takes more than its free slots', async () => {
    const rig = await boot('slow', 2);
    // NOTE: slow next to a claim's round trip even on a loaded machine (where one takes tens of ms).
    const jobs = await producer.addBulk(Array.from({ length: 20 }, (_, i) => ({ queue: 'slow', name: 'slow', data: { ms: 250, i } })));
    await waitCompleted(jobs.map((j) => j.id));
    // The jobs of one claim share its transaction's now() as started_at: no claim took more than
    // the two slots.
    const [{ largest }] = await sql<{ largest: number }>(
      `SELECT max(n)::int AS largest FROM (SELECT count(*) AS n FROM "${schema}".queue_jobs WHERE queue = 'slow' GROUP BY started_at) AS claims`,
    );
    expect(largest).toBeLessThanOrEqual(2);
    expect(rig.stats()).toMatchObject({ started: 0, handedBack: 0, ahead: 0 });
    expect(rig.stats().slotMs).toBeGreaterThanOrEqual(200);
  });

  it('a pause from another process hands the buffered jobs back (attempt refunded): they do not run until resumed', async () => {
    const rig = await boot('pause-notice', 1, { claimAhead: { maxWaitMs: NO_POLL } });
    const { gateId, behind } = await fillBuffer(rig, 'pause-notice');
    // The producer is another app: its pause reaches the worker as a notice.
    await producer.pause('pause-notice');
    await waitFor('the buffered jobs to be handed back', async () => (await rowsOf(behind)).every((r) => r.state === 'pending' && r.attempts === 0));
    expect(rig.stats().buffered).toBe(0);
    expect(rig.stats().handedBack).toBeGreaterThanOrEqual(behind.length);
    rig.gate.release();
    await waitCompleted([gateId]);
    expect(rig.ran.filter((id) => behind.includes(id))).toEqual([]);
    expect((await rowsOf(behind)).every((r) => r.state === 'pending')).toBe(true);
    await producer.resume('pause-notice');
    await waitCompleted(behind);
    expect(rig.ran.filter((id) => behind.includes(id)).sort()).toEqual([...behind].sort());
    expect((await rowsOf(behind)).map((r) => r.attempts)).toEqual(behind.map(() => 1));
  });

  it('a pause in the worker\'s own process hands the buffer back before pause() resolves', async () => {
    const rig = await boot('pause-local', 1, { claimAhead: { maxWaitMs: NO_POLL } });
    const { gateId, behind } = await fillBuffer(rig, 'pause-local');
    await rig.queue.pause('pause-local');
    expect(rig.stats().buffered).toBe(0);
    expect(rig.stats().handedBack).toBeGreaterThanOrEqual(behind.length);
    rig.gate.release();
    await waitCompleted([gateId]);
    await waitFor('the hand-backs written', async () => (await rowsOf(behind)).every((r) => r.state === 'pending' && r.attempts === 0));
    expect(rig.ran.filter((id) => behind.includes(id))).toEqual([]);
    await rig.queue.resume('pause-local');
    await waitCompleted(behind);
  });

  it('buffered jobs keep their leases: renewed by heartbeats while they wait, never rescued', async () => {
    // A short lease (renewed every 200 ms, rescued 600 ms after its last renewal).
    const rig = await boot('lease', 1, { claimAhead: { maxWaitMs: NO_POLL }, lockDurationMs: 600 });
    const { gateId, behind } = await fillBuffer(rig, 'lease');
    const leases = () =>
      sql<{ until: number; by: string | null; state: string }>(
        `SELECT floor(date_part('epoch', locked_until) * 1000) AS until, locked_by AS by, state FROM "${schema}".queue_jobs WHERE id = ANY($1::bigint[])`,
        [behind],
      );
    const first = Math.max(...(await leases()).map((l) => Number(l.until)));
    // Three lease lengths later than the first lease's end, every buffered row is still ours.
    await waitFor('the buffered leases renewed past three lease lengths', async () => {
      const now = await leases();
      return now.every((l) => l.state === 'active' && l.by !== null && Number(l.until) > first + 1800);
    }, 15_000);
    expect(rig.stats()).toMatchObject({ handedBack: 0, dropped: 0 });
    expect(rig.stats().buffered).toBeGreaterThanOrEqual(behind.length);
    rig.gate.release();
    await waitCompleted([gateId, ...behind]);
    expect((await rowsOf(behind)).map((r) => [r.attempts, r.claims])).toEqual(behind.map(() => [1, 1]));
    expect(rig.ran.filter((id) => behind.includes(id)).sort()).toEqual([...behind].sort());
  });

  it('a cancelled buffered job is dropped, never run; the others run', async () => {
    const rig = await boot('cancel', 1, { claimAhead: { maxWaitMs: NO_POLL } });
    const { gateId, behind } = await fillBuffer(rig, 'cancel');
    const cancelled = behind.slice(0, MIN_BEHIND);
    for (const id of cancelled) expect((await producer.cancel(id)).state).toBe(JobState.Cancelled);
    // The cancel notice reaches the worker, whose heartbeat reads the rows and aborts the entries.
    await waitFor('the cancellations to reach the buffered entries', () => rig.stats().bufferedAborted === cancelled.length);
    rig.gate.release();
    const rest = behind.filter((id) => !cancelled.includes(id));
    await waitCompleted([gateId, ...rest]);
    expect(rig.ran.filter((id) => cancelled.includes(id))).toEqual([]);
    expect(rig.ran.filter((id) => rest.includes(id)).sort()).toEqual([...rest].sort());
    expect((await rowsOf(cancelled)).map((r) => r.state)).toEqual(cancelled.map(() => 'cancelled'));
    expect(rig.stats().dropped).toBe(cancelled.length);
  });

  it('at shutdown the buffered jobs are handed back with the attempt refunded', async () => {
    const rig = await boot('shutdown', 1, { claimAhead: { maxWaitMs: NO_POLL }, shutdownTimeoutMs: 200 });
    const { gateId, behind } = await fillBuffer(rig, 'shutdown');
    await rig.app.close();
    apps.splice(apps.indexOf(rig.app), 1);
    const rows = await rowsOf([gateId, ...behind]);
    // The gate honours its abort signal, so it is handed back too.
    expect(rows.map((r) => [r.state, r.attempts])).toEqual(rows.map(() => ['pending', 0]));
    expect(rig.ran.filter((id) => behind.includes(id))).toEqual([]);
  });

  it('a buffer whose slots stall is handed back after maxWaitMs, and another worker runs its jobs', async () => {
    const rig = await boot('stall', 1, { claimAhead: { maxWaitMs: 150 } });
    const { gateId, behind: added } = await fillBuffer(rig, 'stall', false);
    // NOTE: the gate holds the one slot now, so what this worker ran of the jobs behind it is final.
    // On a loaded machine an early stall (before the gate got its slot) can hand everything back
    // and let a job behind run first: the rest must still be handed back.
    const behind = added.filter((id) => !rig.ran.includes(id));
    expect(behind.length).toBeGreaterThan(0);
    let seen = '';
    await waitFor('the stalled buffer to be handed back', async () => {
      const rows = await rowsOf(behind);
      seen = rows.map((r) => `${r.id} ${r.state} attempts ${r.attempts} claims ${r.claims}`).join(', ');
      return rows.every((r) => r.state === 'pending' && r.attempts === 0);
    }).catch((error: Error) => {
      throw new Error(`${error.message} (rows: ${seen}; buffer: ${JSON.stringify(rig.stats())})`);
    });
    // Claimed (claims 1) and handed back, not merely never claimed.
    expect((await rowsOf(behind)).filter((r) => r.claims >= 1).length).toBeGreaterThan(0);
    expect(rig.stats().handedBack).toBeGreaterThan(0);
    const other = await boot('stall', 4);
    await waitCompleted(behind);
    expect(other.ran.filter((id) => behind.includes(id)).sort()).toEqual([...behind].sort());
    expect(rig.ran.filter((id) => behind.includes(id))).toEqual([]);
    rig.gate.release();
    await waitCompleted([gateId]);
  });
});
