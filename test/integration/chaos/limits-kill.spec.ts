import { sql } from '../helpers/database';
import { insertGrouped, sampleLimits, setLimits, type LimitSamples } from '../helpers/limits';
import { waitFor } from '../helpers/wait-for';
import type { ChildWorker } from './fixtures/child-worker';
import { countStates, useChaosEnvironment } from './fixtures/chaos-db';

// Limits hold across real worker processes that die without warning: 3 processes, one SIGKILLed
// twice (killed, replaced, the replacement killed), the limits sampled every 10 ms from another
// connection; serial groups stay serial through the kills; limits changed while jobs run never
// deadlock nor strand a job.
const env = useChaosEnvironment('chaos_limits');
const { schema, workers } = env;
const GLOBAL = 6;

/** A kill: when, and the jobs the killed process held. */
interface Kill {
  at: number;
  held: string[];
}

/** One attempt as the handler recorded it (start and end markers, the database's clock). */
interface Attempt {
  job: string;
  attempt: number;
  pid: number;
  group: string;
  start: number;
  end?: number;
}

describe('chaos: limits across worker processes killed with SIGKILL', () => {
  afterEach(() => workers.killAll());

  /** Jobs of `queue` leased right now by process `pid`. */
  async function activeOn(queue: string, pid: number): Promise<string[]> {
    const rows = await sql<{ id: string }>(
      `SELECT id::text FROM "${schema}".queue_jobs WHERE queue = $1 AND state = 'active' AND locked_by ~ (':' || $2::text || ':[^:]*$')`,
      [queue, pid],
    );
    return rows.map((r) => r.id);
  }

  /** SIGKILLs `victim` once it runs jobs; returns when it died and the jobs it held. */
  async function killMidRun(queue: string, victim: ChildWorker): Promise<Kill> {
    await waitFor(`child ${victim.pid} to have jobs in flight`, async () => (await activeOn(queue, victim.pid)).length > 0);
    const at = Date.now();
    victim.kill('SIGKILL');
    expect(await victim.exited).toMatchObject({ signal: 'SIGKILL' });
    await victim.waitForBackendsGone();
    return { at, held: await activeOn(queue, victim.pid) };
  }

  /**
   * Starts 3 workers of `queue`, SIGKILLs one once it runs jobs (after a tenth of the `total` jobs
   * completed), then its replacement, and waits for every job to complete: the kills, and the
   * workers alive at the end (the last replacement first).
   */
  async function runKilledTwice(queue: string, settings: Parameters<typeof workers.start>[0], total: number): Promise<{ first: Kill; second: Kill; live: ChildWorker[] }> {
    const live = await Promise.all([workers.start(settings), workers.start(settings), workers.start(settings)]);
    const completed = async () => (await countStates(schema, queue)).completed ?? 0;
    await waitFor('a tenth of the jobs to complete', async () => (await completed()) >= total / 10, 30_000);
    const first = await killMidRun(queue, live[0]);
    live[0] = await workers.start(settings);
    // The replacement is killed in turn once it runs jobs.
    const second = await killMidRun(queue, live[0]);
    live[0] = await workers.start(settings);
    await waitFor('every job to complete', async () => (await completed()) === total, 90_000, 100);
    return { first, second, live };
  }

  it(`3 workers, one SIGKILLed twice: never more than ${GLOBAL} active nor 2 of a group at once; serial groups stay serial; every job completes`, async () => {
    const q = 'limits-kill';
    const GROUPS = 12;
    const PER_GROUP = 30;
    await setLimits(schema, q, { globalConcurrency: GLOBAL, groupConcurrency: 1 });
    const settings = { queue: q, concurrency: 8, maxAttempts: 10, worker: { lockDurationMs: 1500, pollIntervalMs: 50 } };
    // Interleaved across groups, so each group's jobs are spread over the table.
    const ids = await insertGrouped(
      schema,
      q,
      Array.from({ length: GROUPS * PER_GROUP }, (_, i) => ({ name: 'sleep', group: `g${i % GROUPS}`, data: { ms: 60 } })),
    );
    const sampler = sampleLimits(schema, q, 10);
    let first: Kill;
    let second: Kill;
    let seen: LimitSamples;
    try {
      ({ first, second } = await runKilledTwice(q, settings, ids.length));
    } finally {
      seen = await sampler.stop();
    }
    expect(seen.count).toBeGreaterThan(100);
    expect(seen.maxActive).toBeLessThanOrEqual(GLOBAL);
    expect(seen.maxActive).toBeGreaterThanOrEqual(GLOBAL - 2);
    expect(seen.maxPerGroup).toBe(1);
    expect(first.held.length + second.held.length).toBeGreaterThan(0);

    // The handlers' own record: per group, each attempt starts only after the one before it ended
    // (or, for an attempt on a killed process, after the kill).
    const marks = await sql<{ job_id: string; attempt: number; pid: number; kind: string; at: Date; group_key: string }>(
      `SELECT m.job_id::text, m.attempt, m.pid, m.kind, m.at, j.group_key FROM "${schema}".markers m
       JOIN "${schema}".queue_jobs j ON j.id = m.job_id WHERE j.queue = $1 ORDER BY m.at`,
      [q],
    );
    const attempts = new Map<string, Attempt>();
    for (const m of marks) {
      const key = `${m.job_id}:${m.attempt}`;
      const a = attempts.get(key) ?? { job: m.job_id, attempt: m.attempt, pid: m.pid, group: m.group_key, start: Infinity };
      if (m.kind === 'start') a.start = m.at.getTime();
      if (m.kind === 'end') a.end = m.at.getTime();
      attempts.set(key, a);
    }
    const killTimes = [first.at, second.at];
    const byGroup = new Map<string, Attempt[]>();
    for (const a of attempts.values()) byGroup.set(a.group, [...(byGroup.get(a.group) ?? []), a]);
    let overlaps = 0;
    for (const list of byGroup.values()) {
      list.sort((x, y) => x.start - y.start);
      for (let i = 1; i < list.length; i++) {
        const prev = list[i - 1];
        // An attempt without an end died with its process: it ended, at the latest, at a kill.
        const prevEnd = prev.end ?? Math.min(...killTimes.filter((t) => t >= prev.start));
        if (list[i].start < prevEnd) overlaps++;
      }
    }
    expect(overlaps).toBe(0);
    // A job held by a killed process is its group's next job to start after the kill.
    for (const kill of [first, second]) {
      for (const held of kill.held) {
        const [{ group_key: group }] = await sql<{ group_key: string }>(`SELECT group_key FROM "${schema}".queue_jobs WHERE id = $1`, [held]);
        const next = (byGroup.get(group) ?? []).find((a) => a.start > kill.at);
        expect(next?.job).toBe(held);
      }
    }
    // The database's record agrees: completed attempts of a group never overlap ([startedAt, finishedAt)).
    const [{ n: dbOverlaps }] = await sql<{ n: number }>(
      `SELECT count(*)::int AS n FROM "${schema}".queue_jobs a JOIN "${schema}".queue_jobs b
         ON a.queue = b.queue AND a.group_key = b.group_key AND a.id < b.id
       WHERE a.queue = $1 AND tstzrange(a.started_at, a.finished_at) && tstzrange(b.started_at, b.finished_at)`,
      [q],
    );
    expect(dbOverlaps).toBe(0);
    const [{ n: wrongOrder }] = await sql<{ n: number }>(
      `SELECT count(*)::int AS n FROM "${schema}".queue_jobs a JOIN "${schema}".queue_jobs b
         ON a.queue = b.queue AND a.group_key = b.group_key AND a.id < b.id
       WHERE a.queue = $1 AND b.finished_at <= a.started_at`,
      [q],
    );
    expect(wrongOrder).toBe(0);
  }, 180_000);

  // NOTE: global concurrency as the only limit is claimed with permits (each worker within its
  // share, no turns on the registry row): the limit must hold through kills all the same, and the
  // permits given out must never add up past it.
  it(`global concurrency alone (permits): 3 workers, one SIGKILLed twice: never more than ${GLOBAL} active nor permits past it; each worker runs its share; every job completes`, async () => {
    const q = 'limits-kill-permits';
    await setLimits(schema, q, { globalConcurrency: GLOBAL });
    const settings = { queue: q, concurrency: 8, maxAttempts: 10, worker: { lockDurationMs: 1500, pollIntervalMs: 50 } };
    const ids = await insertGrouped(schema, q, Array.from({ length: 360 }, () => ({ name: 'sleep', group: null, data: { ms: 40 } })));
    const sampler = sampleLimits(schema, q, 10);
    // The permits table, sampled as well: live permits never add up past the limit.
    let maxPermits = 0;
    let permitSamples = 0;
    let sampling = true;
    const permits = (async () => {
      while (sampling) {
        const [{ n }] = await sql<{ n: number }>(`SELECT COALESCE(sum(slots), 0)::int AS n FROM "${schema}".queue_jobs_permits WHERE queue = $1 AND until > now()`, [q]);
        maxPermits = Math.max(maxPermits, n);
        permitSamples++;
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    })();
    let first: Kill;
    let second: Kill;
    let seen: LimitSamples;
    let live: ChildWorker[] = [];
    try {
      ({ first, second, live } = await runKilledTwice(q, settings, ids.length));
    } finally {
      seen = await sampler.stop();
      sampling = false;
      await permits;
    }
    expect(seen.count).toBeGreaterThan(100);
    expect(permitSamples).toBeGreaterThan(100);
    expect(seen.maxActive).toBeLessThanOrEqual(GLOBAL);
    expect(seen.maxActive).toBeGreaterThanOrEqual(GLOBAL - 2);
    expect(maxPermits).toBeLessThanOrEqual(GLOBAL);
    expect(maxPermits).toBeGreaterThan(0); // the workers did claim with permits
    expect(first.held.length + second.held.length).toBeGreaterThan(0);
    // Fair: the two workers that ran from the start each ran a fair part of the jobs.
    const byPid = await sql<{ pid: number; n: number }>(
      `SELECT m.pid, count(DISTINCT m.job_id)::int AS n FROM "${schema}".markers m JOIN "${schema}".queue_jobs j ON j.id = m.job_id
       WHERE j.queue = $1 AND m.kind = 'start' GROUP BY m.pid`,
      [q],
    );
    for (const child of live.slice(1)) expect(byPid.find((r) => r.pid === child.pid)?.n ?? 0).toBeGreaterThan(ids.length / 6);
    const [{ n: once }] = await sql<{ n: number }>(`SELECT count(*)::int AS n FROM "${schema}".queue_jobs WHERE queue = $1 AND state = 'completed'`, [q]);
    expect(once).toBe(ids.length);
  }, 180_000);

  it('limits changed again and again while 3 workers run (and one is killed) never deadlock nor strand a job', async () => {
    const q = 'limits-churn';
    const settings = { queue: q, concurrency: 6, maxAttempts: 10, worker: { lockDurationMs: 1500, pollIntervalMs: 50 } };
    const ids = await insertGrouped(schema, q, Array.from({ length: 600 }, (_, i) => ({ name: 'sleep', group: i % 3 === 0 ? null : `c${i % 20}`, data: { ms: 20 } })));
    const live = await Promise.all([workers.start(settings), workers.start(settings), workers.start(settings)]);
    const shapes: object[] = [
      { globalConcurrency: 3 },
      { globalConcurrency: 1, groupConcurrency: 1 },
      {},
      { rateLimit: { max: 40, perMs: 200 } },
      { groupConcurrency: 2, groupRateLimit: { max: 3, perMs: 100 } },
      { globalConcurrency: 10, groupConcurrency: null },
      { globalConcurrency: null },
    ];
    let changes = 0;
    let killed = false;
    const deadline = Date.now() + 4000;
    while (Date.now() < deadline) {
      await setLimits(schema, q, shapes[changes % 3], shapes[changes % shapes.length]);
      changes++;
      if (!killed && changes === 8) {
        killed = true;
        // NOTE: killed while the queue is open, so the victim surely holds jobs (under a global
        // limit of 1 the other processes may hold the only slot for a long time).
        await setLimits(schema, q, {}, {});
        // NOTE: whichever child holds jobs now is killed (a process that claimed ahead may hold
        // the rest of the queue, leaving the others idle).
        const victim = (await waitFor('a child to have jobs in flight', async () => {
          for (let i = 0; i < live.length; i++) if ((await activeOn(q, live[i].pid)).length > 0) return i + 1;
          return undefined;
        })) - 1;
        await killMidRun(q, live[victim]);
        live[victim] = await workers.start(settings);
      }
      await new Promise((resolve) => setTimeout(resolve, 120));
    }
    await setLimits(schema, q, {}, {});
    await waitFor('every job to complete', async () => (await countStates(schema, q)).completed === ids.length, 60_000, 100);
    expect(changes).toBeGreaterThan(6);
    expect(await countStates(schema, q)).toEqual({ completed: ids.length });
    for (const child of workers.all()) expect(child.output).not.toMatch(/deadlock|claim failed/i);
  }, 120_000);
});

