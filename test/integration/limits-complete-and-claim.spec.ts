import type { INestApplicationContext } from '@nestjs/common';
import { Client } from 'pg';
import { Handle, Processor, QueueService, type ActiveJob } from '../../lib';
import { QueueDatabase } from '../../lib/database/queue-database';
import type { AttemptOutcome, ClaimDefaults, JobRepository } from '../../lib/database/job.repository';
import { createTestApp } from './helpers/app';
import { DATABASE_URL, dropSchema, sql, uniqueSchema } from './helpers/database';
import { setLimits } from './helpers/limits';
import { waitFor } from './helpers/wait-for';

// A limited queue writes its completions with its next claim, in one statement and one transaction
// (`completeAndClaimLimited`): the claim sees the capacity they freed, a fenced completion is not
// written, and when the statement fails nothing of it is written and the completer writes them.
const schema = uniqueSchema('lim_cc');
const DEFAULTS: ClaimDefaults = { maxAttempts: 3, backoff: { type: 'fixed', delayMs: 0 }, timeoutMs: null };
const done = (id: string, claim: number): AttemptOutcome => ({ id, claim, state: 'completed', result: null, error: null, delayMs: 0, refund: false });

/** A processor of `queue` (concurrency 10) that counts in `runs` how many times each job ran. */
function countingProcessor(queue: string, runs: Map<string, number>) {
  @Processor(queue, { concurrency: 10 })
  class CountingProcessor {
    @Handle()
    run(job: ActiveJob) {
      runs.set(job.id, (runs.get(job.id) ?? 0) + 1);
    }
  }
  Object.defineProperty(CountingProcessor, 'name', { value: `Counting_${queue.replace(/\W/g, '_')}` });
  return CountingProcessor;
}

/** How many times each job's handler ran, per queue. */
const runs = new Map<string, number>();
const runs2 = new Map<string, number>();
const QuickProcessor = countingProcessor('cc-worker', runs);
const QuickProcessor2 = countingProcessor('cc-fail-worker', runs2);
const runsPermits = new Map<string, number>();
const PermitsProcessor = countingProcessor('cc-permits', runsPermits);

describe('limited queues: completions written with the next claim', () => {
  const apps: INestApplicationContext[] = [];
  let queue: QueueService;
  let repository: JobRepository;

  beforeAll(async () => {
    const app = await createTestApp({ schema, queue: { worker: false } });
    apps.push(app);
    queue = app.get(QueueService);
    repository = await app.get(QueueDatabase).getRepository();
  });
  afterAll(async () => {
    for (const app of apps.reverse()) await app.close().catch(() => undefined);
    await dropSchema(schema);
  });

  const states = async (ids: string[]) =>
    (await sql<{ id: string; state: string }>(`SELECT id::text, state FROM "${schema}".queue_jobs WHERE id = ANY($1::bigint[]) ORDER BY id`, [ids])).map((r) => r.state);

  it('the claim sees the slots its own completions freed; a fenced completion is not written and keeps its slot', async () => {
    await setLimits(schema, 'cc', { globalConcurrency: 2 });
    const added = await queue.addBulk(Array.from({ length: 6 }, (_, i) => ({ queue: 'cc', name: 'x', data: { i } })));
    const first = await repository.claimLimited('cc', 10, 'w1', 30_000, DEFAULTS);
    expect(first.jobs.map((j) => j.id)).toEqual(added.slice(0, 2).map((j) => j.id));
    // The global limit is full: nothing more without a completion.
    expect((await repository.claimLimited('cc', 10, 'w1', 30_000, DEFAULTS)).jobs).toEqual([]);

    const [a, b] = first.jobs;
    const both = await repository.completeAndClaimLimited([done(a.id, a.claims), done(b.id, b.claims)], 'cc', 10, 'w1', 30_000, DEFAULTS);
    expect([...both.written].sort()).toEqual([a.id, b.id].sort());
    expect(both.jobs.map((j) => j.id)).toEqual(added.slice(2, 4).map((j) => j.id));
    expect(both.limited).toBe(true);
    expect(await states([a.id, b.id])).toEqual(['completed', 'completed']);

    // One completion on a stale claim (fenced: not written, its job still counts), one good one.
    const [c, d] = both.jobs;
    const fenced = await repository.completeAndClaimLimited([done(c.id, c.claims + 1), done(d.id, d.claims)], 'cc', 10, 'w1', 30_000, DEFAULTS);
    expect([...fenced.written]).toEqual([d.id]);
    expect(fenced.jobs.map((j) => j.id)).toEqual([added[4].id]);
    expect(await states([c.id, d.id])).toEqual(['active', 'completed']);
    // Another worker's completion of jobs it does not hold is fenced too.
    const other = await repository.completeAndClaimLimited([done(c.id, c.claims)], 'cc', 10, 'w2', 30_000, DEFAULTS);
    expect(other.written.size).toBe(0);
    expect(other.jobs).toEqual([]);
  });

  it('a statement that fails writes neither the completions nor the claim', async () => {
    await setLimits(schema, 'cc-fail', { globalConcurrency: 5 });
    await queue.addBulk(Array.from({ length: 4 }, (_, i) => ({ queue: 'cc-fail', name: 'x', data: { i } })));
    const [job] = (await repository.claimLimited('cc-fail', 1, 'w1', 30_000, DEFAULTS)).jobs;
    // The claim part waits for the registry row, held here, until the statement times out.
    const holder = new Client({ connectionString: DATABASE_URL });
    await holder.connect();
    try {
      await holder.query('BEGIN');
      await holder.query(`SELECT 1 FROM "${schema}".queue_jobs_queues WHERE name = 'cc-fail' FOR UPDATE`);
      const client = new Client({ connectionString: DATABASE_URL });
      await client.connect();
      try {
        await client.query(`SET statement_timeout = 300`);
        const params = ['cc-fail', 10, 'w1', 30_000, DEFAULTS.maxAttempts, JSON.stringify(DEFAULTS.backoff), null, `{${job.id}}`, `{${job.claims}}`, null];
        await expect(client.query(repository.statements.completeAndClaimLimited, params)).rejects.toThrow(/statement timeout/);
      } finally {
        await client.end();
      }
      await holder.query('ROLLBACK');
    } finally {
      await holder.end();
    }
    expect(await states([job.id])).toEqual(['active']);
    const pending = await sql<{ n: number }>(`SELECT count(*)::int AS n FROM "${schema}".queue_jobs WHERE queue = 'cc-fail' AND state = 'pending'`);
    expect(pending[0].n).toBe(3);
  });

  // NOTE: global concurrency alone is claimed with permits (`completeAndClaimPermitted`); with a
  // rate limit too, by the limited claim, which takes turns on the registry row.
  it.each([
    ['the limited claim', 'cc-worker', { globalConcurrency: 10, rateLimit: { max: 100_000, perMs: 1000 } }, 'completeAndClaimLimited', QuickProcessor, runs],
    ['permits', 'cc-permits', { globalConcurrency: 10 }, 'completeAndClaimPermitted', PermitsProcessor, runsPermits],
  ] as const)('a worker drains a limited queue of quick jobs with its completions riding on its claims (%s), each job once', async (_how, name, limits, method, processor, runs) => {
    await setLimits(schema, name, limits);
    const app = await createTestApp({ schema, providers: [processor], queue: { worker: { pollIntervalMs: 200 } } });
    apps.push(app);
    const workerRepository = await app.get(QueueDatabase).getRepository();
    // Observed, not replaced: which statement wrote the completions.
    const combined = jest.spyOn(workerRepository, method);
    const finish = jest.spyOn(workerRepository, 'finish');
    const jobs = await queue.addBulk(Array.from({ length: 500 }, (_, i) => ({ queue: name, name: 'x', data: { i } })));
    const ids = jobs.map((j) => j.id);
    await waitFor('500 jobs completed', async () => (await states(ids)).every((s) => s === 'completed'), 30_000);
    const byClaims = (await Promise.all(combined.mock.results.map((r) => r.value as Promise<{ written: Set<string> }>))).reduce((n, r) => n + r.written.size, 0);
    const byFinish = finish.mock.calls.reduce((n, [outcomes]) => n + outcomes.length, 0);
    // NOTE: the last batch has no claim to ride on when the queue is empty only if the worker
    // stops; while it runs, a claim follows every batch. Most must have gone with claims.
    expect(byClaims + byFinish).toBeGreaterThanOrEqual(500);
    expect(byClaims).toBeGreaterThan(400);
    expect([...runs.values()].every((n) => n === 1)).toBe(true);
    expect(runs.size).toBe(500);
    const attempts = await sql<{ n: number }>(`SELECT count(*)::int AS n FROM "${schema}".queue_jobs WHERE id = ANY($1::bigint[]) AND attempts = 1`, [ids]);
    expect(attempts[0].n).toBe(500);
    combined.mockRestore();
    finish.mockRestore();
  });

  it('when the combined statement fails the completer writes the completions: no job is lost or run twice', async () => {
    await setLimits(schema, 'cc-fail-worker', { globalConcurrency: 10 });
    // NOTE: a short lease and rescue: a claim the client gave up on may still be carried out by
    // the server once it gets the lock (it cannot tell the client left while it waits); its jobs
    // are then nobody's, and are rescued when their lease lapses (at-least-once).
    const app = await createTestApp({
      schema,
      providers: [QuickProcessor2],
      queue: { queryTimeoutMs: 1000, worker: { pollIntervalMs: 200, lockDurationMs: 1500 } },
    });
    apps.push(app);
    const jobs = await queue.addBulk(Array.from({ length: 200 }, (_, i) => ({ queue: 'cc-fail-worker', name: 'x', data: { i } })));
    const ids = jobs.map((j) => j.id);
    // While the registry row is held, every claim of the queue waits (and times out at
    // queryTimeoutMs); the completions it carried are written by the completer meanwhile.
    const holder = new Client({ connectionString: DATABASE_URL });
    await holder.connect();
    try {
      await waitFor('some jobs to run', () => runs2.size >= 10, 15_000, 1);
      await holder.query('BEGIN');
      await holder.query(`SELECT 1 FROM "${schema}".queue_jobs_queues WHERE name = 'cc-fail-worker' FOR UPDATE`);
      const ran = [...runs2.keys()];
      await waitFor('the jobs that ran to be written while claims wait', async () => {
        const rows = await sql<{ n: number }>(`SELECT count(*)::int AS n FROM "${schema}".queue_jobs WHERE id = ANY($1::bigint[]) AND state <> 'completed'`, [ran]);
        return rows[0].n === 0;
      }, 15_000);
      await holder.query('ROLLBACK');
    } finally {
      await holder.end();
    }
    await waitFor('200 jobs completed', async () => (await states(ids)).every((s) => s === 'completed'), 30_000);
    expect(runs2.size).toBe(200);
    expect([...runs2.values()].every((n) => n === 1)).toBe(true);
  });
});
