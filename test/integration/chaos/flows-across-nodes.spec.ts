import { JobState, type FlowJob } from '../../../lib';
import { sql } from '../helpers/database';
import { waitFor } from '../helpers/wait-for';
import { waitForJobState } from '../helpers/jobs';
import { countStates, useChaosEnvironment } from './fixtures/chaos-db';

/**
 * Flows run by several worker processes: parents run after their children whichever process ran
 * them, the release of a parent whose last two children finish at the same moment in two
 * processes happens exactly once, and a worker SIGKILLed while it runs the last child leaves
 * nothing blocked forever.
 */
const env = useChaosEnvironment('chaos_flows');
const { schema, workers } = env;

describe('chaos: flows across worker processes', () => {
  afterEach(() => workers.killAll());

  it('a flow of depth 3 and width 100 completes in order with 2 worker processes, each job once', async () => {
    const q = 'wide';
    const settings = { queue: q, concurrency: 4, worker: { pollIntervalMs: 50 } };
    const [a, b] = await Promise.all([workers.start(settings), workers.start(settings)]);
    const leaf = (i: number, j: number): FlowJob => ({ queue: q, name: 'record', data: { ms: 1 + ((i + j) % 3), leaf: `${i}.${j}` } });
    const root = await env.queue.addFlow({
      queue: q,
      name: 'record',
      data: { ms: 0, level: 1 },
      children: Array.from({ length: 100 }, (_, i) => ({ queue: q, name: 'record', data: { ms: 1, mid: i }, children: [leaf(i, 0), leaf(i, 1)] })),
    });
    await waitForJobState(env.queue, root.id, JobState.Completed, 90_000);
    expect(await countStates(schema, q)).toEqual({ completed: 301 });

    // Each job ran once, and no job's handler started before every one of its children had finished.
    const [{ runs, jobs }] = await sql<{ runs: number; jobs: number }>(
      `SELECT count(*)::int AS runs, count(DISTINCT job_id)::int AS jobs FROM "${schema}".executions e JOIN "${schema}".queue_jobs j ON j.id = e.job_id WHERE j.queue = $1`,
      [q],
    );
    expect({ runs, jobs }).toEqual({ runs: 301, jobs: 301 });
    const early = await sql(
      `SELECT p.id, e.at AS parent_started, max(c.finished_at) AS last_child_finished
       FROM "${schema}".queue_jobs p JOIN "${schema}".executions e ON e.job_id = p.id JOIN "${schema}".queue_jobs c ON c.parent_id = p.id
       WHERE p.queue = $1 GROUP BY p.id, e.at HAVING e.at < max(c.finished_at)`,
      [q],
    );
    expect(early).toEqual([]);
    const pids = await sql<{ pid: number }>(`SELECT DISTINCT e.pid FROM "${schema}".executions e JOIN "${schema}".queue_jobs j ON j.id = e.job_id WHERE j.queue = $1`, [q]);
    expect(pids.map((p) => p.pid).sort()).toEqual([a.pid, b.pid].sort());
    const [{ left }] = await sql<{ left: number }>(`SELECT count(*)::int AS left FROM "${schema}".queue_jobs WHERE queue = $1 AND deps_pending <> 0`, [q]);
    expect(left).toBe(0);
  });

  it('the last two children completing at the same moment in two processes release their parent exactly once, every time', async () => {
    const q = 'race';
    // NOTE: concurrency 1: while one process holds a child, the other must take its sibling.
    const settings = { queue: q, concurrency: 1, worker: { pollIntervalMs: 20 } };
    await Promise.all([workers.start(settings), workers.start(settings)]);
    const rounds = 40;
    const roots: string[] = [];
    for (let round = 0; round < rounds; round++) {
      // NOTE: far enough ahead that both processes have claimed a child, even on a loaded machine.
      const at = Date.now() + 400;
      const child = { queue: q, name: 'until', data: { at } };
      const root = await env.queue.addFlow({ queue: q, name: 'record', data: { ms: 0 }, children: [child, child] });
      roots.push(root.id);
      await waitForJobState(env.queue, root.id, JobState.Completed, 15_000);
    }
    // Every parent ran once (one claim, one execution) with its counter at zero, never below.
    const parents = await sql<{ id: string; claims: number; deps_pending: number; runs: number }>(
      `SELECT p.id::text, p.claims, p.deps_pending, (SELECT count(*)::int FROM "${schema}".executions e WHERE e.job_id = p.id) AS runs
       FROM "${schema}".queue_jobs p WHERE p.id = ANY($1::bigint[])`,
      [roots],
    );
    expect(parents.filter((p) => p.claims !== 1 || p.deps_pending !== 0 || p.runs !== 1)).toEqual([]);
    expect(parents).toHaveLength(rounds);
    // The race was real: in most rounds the siblings ran in two processes and finished within 100 ms of each other.
    const raced = await sql<{ n: number }>(
      `SELECT count(*)::int AS n FROM (
         SELECT c.parent_id FROM "${schema}".queue_jobs c JOIN "${schema}".executions e ON e.job_id = c.id
         WHERE c.parent_id = ANY($1::bigint[])
         GROUP BY c.parent_id
         HAVING count(DISTINCT e.pid) = 2 AND max(c.finished_at) - min(c.finished_at) < interval '100 milliseconds') AS r`,
      [roots],
    );
    expect(raced[0].n).toBeGreaterThanOrEqual(rounds / 2);
  });

  it('a worker SIGKILLed while running the last child: the child is rescued, completes elsewhere, and the parent is released', async () => {
    const q = 'killed';
    const settings = { queue: q, concurrency: 1, maxAttempts: 3, worker: { pollIntervalMs: 50, lockDurationMs: 1500 } };
    const victim = await workers.start(settings);
    const root = await env.queue.addFlow({
      queue: q,
      name: 'record',
      data: { ms: 0 },
      children: [{ queue: q, name: 'record', data: { ms: 0 } }, { queue: q, name: 'stall-first', data: { ms: 60_000 } }],
    });
    const last = root.children[1];
    await waitForJobState(env.queue, root.children[0].id, JobState.Completed);
    await waitFor('the last child to run on the victim', async () => {
      const [row] = await sql<{ state: string; locked_by: string | null }>(`SELECT state, locked_by FROM "${schema}".queue_jobs WHERE id = $1`, [last.id]);
      return row.state === 'active' && row.locked_by?.includes(`:${victim.pid}:`);
    });
    victim.kill('SIGKILL');
    expect(await victim.exited).toMatchObject({ signal: 'SIGKILL' });
    await victim.waitForBackendsGone();
    expect((await env.queue.getJob(root.id))!.state).toBe(JobState.Blocked);

    const survivor = await workers.start(settings);
    const done = await waitForJobState(env.queue, root.id, JobState.Completed, 30_000);
    expect(done.attempts).toBe(1);
    const lastChild = (await env.queue.getJob(last.id))!;
    expect(lastChild).toMatchObject({ state: JobState.Completed, attempts: 2, result: { pid: survivor.pid, attempt: 2 } });
    expect(await countStates(schema, q)).toEqual({ completed: 3 });
  });

  it('a child that takes its worker down on its last attempt is failed by the rescuer, and that fails its parent: nothing stays blocked', async () => {
    const q = 'doomed';
    const settings = { queue: q, concurrency: 1, maxAttempts: 1, worker: { pollIntervalMs: 50, lockDurationMs: 1000 } };
    const victim = await workers.start(settings);
    const root = await env.queue.addFlow({ queue: q, name: 'record', data: { ms: 0 }, children: [{ queue: q, name: 'suicide', data: {} }] });
    expect(await victim.exited).toMatchObject({ signal: 'SIGKILL' });
    await workers.start(settings);
    const parent = await waitForJobState(env.queue, root.id, JobState.Failed, 30_000);
    expect(parent.lastError).toMatchObject({ name: 'JobDependencyFailedError', dependencyId: root.children[0].id });
    expect((await env.queue.getJob(root.children[0].id))!.lastError).toMatchObject({ name: 'JobLeaseExpiredError' });
    const [{ n }] = await sql<{ n: number }>(`SELECT count(*)::int AS n FROM "${schema}".executions e WHERE e.job_id = $1`, [root.id]);
    expect(n).toBe(0);
  });
});
