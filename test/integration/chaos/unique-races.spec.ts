import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { JobState } from '../../../lib';
import { sql } from '../helpers/database';
import { waitForJobState } from '../helpers/jobs';
import { waitFor } from '../helpers/wait-for';
import { useChaosEnvironment } from './fixtures/chaos-db';
import type { ChildWorker } from './fixtures/child-worker';
import type { Job, JobOptions } from '../../../lib';

// Unique keys hold under real concurrency: separate processes, each with its own connections,
// adding the same key at the same moment. The database's unique index decides, not the library.
const env = useChaosEnvironment('uraces');
const PRODUCERS = 4;
const PER_PRODUCER = 25;

describe('unique keys under concurrent producers in separate processes', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'pgq-races-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  afterEach(() => env.workers.killAll());

  /** Starts the producers, lets them all fire at once, and returns what each add returned. */
  async function race(queue: string, jobs: (p: number) => { name: string; data: unknown; options?: JobOptions }[], bulk = false) {
    const goFile = join(dir, `${queue}.go`);
    const producers: ChildWorker[] = await Promise.all(
      Array.from({ length: PRODUCERS }, (_, p) => env.workers.start({ queue, produce: { goFile, bulk, jobs: jobs(p) } })),
    );
    writeFileSync(goFile, 'go');
    const results = await Promise.all(
      producers.map(async (child) => JSON.parse((await child.waitForOutput(/CHAOS_PRODUCED (.*)\n/, 30_000))[1]) as { id: string; duplicate: boolean }[]),
    );
    return results.flat();
  }
  const rows = (queue: string) =>
    sql<{ id: string; data: unknown; state: string }>(`SELECT id::text, data, state FROM "${env.schema}".queue_jobs WHERE queue = $1`, [queue]);

  it(`${PRODUCERS} processes x ${PER_PRODUCER} concurrent add()s of one key: exactly one job`, async () => {
    const added = await race('race-add', (p) =>
      Array.from({ length: PER_PRODUCER }, (_, i) => ({ name: 'noop', data: { p, i }, options: { unique: { key: 'one' } } })),
    );
    expect(added).toHaveLength(PRODUCERS * PER_PRODUCER);
    const stored = await rows('race-add');
    expect(stored).toHaveLength(1);
    expect(new Set(added.map((a) => a.id))).toEqual(new Set([stored[0].id]));
    expect(added.filter((a) => !a.duplicate)).toHaveLength(1);
  });

  it(`${PRODUCERS} processes, each one addBulk of ${PER_PRODUCER} jobs with one key: exactly one job`, async () => {
    const added = await race(
      'race-bulk',
      (p) => Array.from({ length: PER_PRODUCER }, (_, i) => ({ name: 'noop', data: { p, i }, options: { unique: { key: 'one' } } })),
      true,
    );
    const stored = await rows('race-bulk');
    expect(stored).toHaveLength(1);
    expect(new Set(added.map((a) => a.id))).toEqual(new Set([stored[0].id]));
    expect(added.filter((a) => !a.duplicate)).toHaveLength(1);
  });

  it('with replace: exactly one pending job, holding one of the submitted payloads whole', async () => {
    const payload = (p: number, i: number) => ({ p, i, tag: `${p}-${i}`, blob: `${p}:${i}:`.repeat(50) });
    await race('race-replace', (p) =>
      Array.from({ length: PER_PRODUCER }, (_, i) => ({ name: 'noop', data: payload(p, i), options: { unique: { key: 'one', replace: true } } })),
    );
    const stored = await rows('race-replace');
    expect(stored).toHaveLength(1);
    expect(stored[0].state).toBe('pending');
    const { p, i } = stored[0].data as { p: number; i: number };
    expect(stored[0].data).toEqual(payload(p, i));
  });

  it("a worker SIGKILLed while running an until-'finish' job: the key stays held until the job is rescued and finishes, never two at once", async () => {
    const queue = 'race-kill';
    const worker = await env.workers.start({ queue, worker: { lockDurationMs: 1500, pollIntervalMs: 100 } });
    const job = await env.queue.add(queue, 'sleep', { ms: 1500 }, { unique: { key: 'held' } });
    await waitFor('the first attempt to start', async () => (await sql(`SELECT 1 FROM "${env.schema}".markers WHERE job_id = $1 AND kind = 'start'`, [job.id])).length > 0);
    worker.kill('SIGKILL');
    await worker.exited;

    // Sampled from another connection until the job completes: never two unfinished jobs with the key.
    let maxUnfinished = 0;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        const [{ n }] = await sql<{ n: number }>(
          `SELECT count(*)::int AS n FROM "${env.schema}".queue_jobs WHERE queue = $1 AND unique_key = 'held' AND state NOT IN ('completed', 'failed', 'cancelled')`,
          [queue],
        );
        maxUnfinished = Math.max(maxUnfinished, n);
        await new Promise((r) => setTimeout(r, 10));
      }
    })();
    // While the dead worker's lease runs out, and while the rescued job runs again, adds find the holder.
    await env.workers.start({ queue, worker: { lockDurationMs: 1500, pollIntervalMs: 100 } });
    const added: Job[] = [];
    await waitFor('the rescued job to complete, adding the key all along', async () => {
      added.push(await env.queue.add(queue, 'sleep', { ms: 1 }, { unique: { key: 'held' } }));
      return (await env.queue.getJob(job.id))?.state === JobState.Completed;
    }, 30_000, 50);
    sampling = false;
    await sampler;
    const done = await waitForJobState(env.queue, job.id, JobState.Completed);
    expect(done.attempts).toBe(2);
    // Every add returned the holder, but for one made after it finished (the loop's last may be).
    const others = added.filter((a) => a.id !== job.id);
    expect(added.length - others.length).toBeGreaterThan(5);
    expect(others.length).toBeLessThanOrEqual(1);
    for (const other of others) expect(other.createdAt.getTime()).toBeGreaterThanOrEqual(done.finishedAt!.getTime());
    expect(maxUnfinished).toBe(1);
    // Finished: the key is free (or taken by the one job added after it finished).
    const after = await env.queue.add(queue, 'sleep', { ms: 1 }, { unique: { key: 'held' } });
    expect(after.id === job.id).toBe(false);
  });
});
