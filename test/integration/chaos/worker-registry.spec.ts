import { sql } from '../helpers/database';
import { waitFor } from '../helpers/wait-for';
import { useChaosEnvironment } from './fixtures/chaos-db';

/**
 * The worker registry across real processes: each worker lists itself, a SIGKILLed one drops out
 * once it expires (a few lease lengths) and its row is pruned by a live worker, a gracefully stopped
 * one removes itself at once.
 */
const env = useChaosEnvironment('obs_registry');
const { schema, workers } = env;
const LEASE_MS = 1000;

describe('worker registry', () => {
  afterEach(() => workers.killAll());

  const rowsOf = async (pid: number) =>
    (await sql<{ n: number }>(`SELECT count(*)::int AS n FROM "${schema}".queue_jobs_workers WHERE pid = $1`, [pid]))[0].n;

  it('lists 3 worker processes; a SIGKILLed one disappears after expiry; a graceful stop removes itself at once', async () => {
    const settings = { queue: 'reg', concurrency: 2, worker: { lockDurationMs: LEASE_MS, pollIntervalMs: 50 } };
    const [a, b, c] = await Promise.all([workers.start(settings), workers.start(settings), workers.start(settings)]);
    const pids = [a.pid, b.pid, c.pid].sort();

    const listed = await waitFor('the 3 workers to be listed', async () => {
      const found = (await env.queue.getWorkers()).filter((w) => pids.includes(w.pid));
      return found.length === 3 ? found : null;
    });
    for (const w of listed) {
      expect(w.queues).toEqual({ reg: 2 });
      expect(w.id).toMatch(new RegExp(`:${w.pid}:`));
      expect(w.startedAt.getTime()).toBeLessThanOrEqual(w.lastHeartbeatAt.getTime());
      expect(w.expiresAt.getTime()).toBeGreaterThan(w.lastHeartbeatAt.getTime());
    }

    // Jobs running now are reported by the heartbeat.
    const job = await env.queue.add('reg', 'sleep', { ms: 4000 });
    const busy = await waitFor('a worker to report the running job', async () => (await env.queue.getWorkers()).find((w) => w.running === 1));
    const [{ locked_by }] = await sql<{ locked_by: string }>(`SELECT locked_by FROM "${schema}".queue_jobs WHERE id = $1`, [job.id]);
    expect(busy.id).toBe(locked_by);

    // SIGKILL: no goodbye; listed until its row expires, then gone, and its row pruned by a live worker.
    a.kill('SIGKILL');
    await a.exited;
    const killedAt = Date.now();
    const gone = await waitFor('the killed worker to expire', async () => !(await env.queue.getWorkers()).some((w) => w.pid === a.pid), 4 * LEASE_MS * 3);
    expect(gone).toBe(true);
    // NOTE: not before its last beat's expiry (3 leases), less the beat interval it may have been into.
    expect(Date.now() - killedAt).toBeGreaterThanOrEqual(3 * LEASE_MS - LEASE_MS / 3 - 100);
    await waitFor('the killed worker\'s row to be pruned', async () => (await rowsOf(a.pid)) === 0);

    // Graceful stop: removed before the process exits.
    b.kill('SIGTERM');
    // Nest's shutdown hook closes the app, then re-raises the signal: a clean exit is either.
    expect([{ code: 0, signal: null }, { code: null, signal: 'SIGTERM' }]).toContainEqual(await b.exited);
    expect(await rowsOf(b.pid)).toBe(0);
    expect((await env.queue.getWorkers()).filter((w) => pids.includes(w.pid)).map((w) => w.pid)).toEqual([c.pid]);
  }, 60_000);
});
