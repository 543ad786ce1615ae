import { sql } from '../helpers/database';
import { waitFor } from '../helpers/wait-for';
import { useChaosEnvironment } from './fixtures/chaos-db';

/**
 * A worker that froze past its lease (GC pause, suspended VM, SIGSTOP) wakes up after another
 * worker rescued and completed its job: its late completion must not overwrite the newer attempt.
 */
const env = useChaosEnvironment('chaos_fence');
const { schema, workers } = env;

describe('chaos: fencing a worker whose lease lapsed', () => {
  it('drops the late result and rolls back the late transaction of a frozen worker', async () => {
    const q = 'fence';
    const settings = { queue: q, concurrency: 2, maxAttempts: 3, worker: { lockDurationMs: 1000, pollIntervalMs: 50 } };
    const frozen = await workers.start(settings);
    // On attempt 1 each handler blocks its event loop (no heartbeat can run) and, once it goes on,
    // completes straight away: `fence` returns its result, `fence-tx` commits its effect row with
    // the completion through job.transaction().
    const [plain, transactional] = await env.queue.addBulk([
      { queue: q, name: 'fence', data: { blockMs: 1500 } },
      { queue: q, name: 'fence-tx', data: { blockMs: 1500 } },
    ]);
    await waitFor('the first worker to run both jobs', async () => {
      const rows = await sql<{ locked_by: string }>(
        `SELECT locked_by FROM "${schema}".queue_jobs WHERE queue = $1 AND state = 'active' AND attempts = 1`,
        [q],
      );
      return rows.length === 2 && rows.every((r) => r.locked_by.includes(`:${frozen.pid}:`));
    });
    // Frozen inside the first handler: its lease lapses while it cannot renew it.
    frozen.kill('SIGSTOP');

    const rescuer = await workers.start(settings);
    const completedBoth = async () => {
      const rows = await sql<{ state: string }>(`SELECT state FROM "${schema}".queue_jobs WHERE queue = $1`, [q]);
      return rows.every((r) => r.state === 'completed');
    };
    await waitFor('the second worker to rescue and complete both jobs', completedBoth);

    // The frozen worker wakes up and finishes attempt 1 of both jobs.
    frozen.kill('SIGCONT');
    const late = await waitFor('the late transaction of the first worker to end', async () => {
      const rows = await sql<{ info: string }>(`SELECT info FROM "${schema}".markers WHERE job_id = $1 AND pid = $2 AND kind = 'late'`, [transactional.id, frozen.pid]);
      return rows[0];
    });
    // Its commit was refused (the completion inside the transaction found a newer attempt)...
    expect(late.info).toBe('JobLeaseLostError');
    // ...and its plain result reached the database, where the fenced write changed nothing.
    await frozen.waitForOutput(new RegExp(`Job ${plain.id} attempt 1: this worker no longer holds its lease`));

    const jobs = await sql<{ id: string; state: string; attempts: number; result: unknown; last_error: { name: string; message: string } }>(
      `SELECT id, state, attempts, result, last_error FROM "${schema}".queue_jobs WHERE queue = $1 ORDER BY id`,
      [q],
    );
    for (const job of jobs) {
      expect(job).toMatchObject({ state: 'completed', attempts: 2, result: { pid: rescuer.pid, attempt: 2 } });
      // Attempt 1 ended by the rescuer, when the frozen worker's lease lapsed.
      expect(job.last_error.name).toBe('JobLeaseExpiredError');
      expect(job.last_error.message).toContain(`:${frozen.pid}:`);
    }
    // Exactly one effect: the rescuer's. The frozen worker's late insert was rolled back.
    expect(await sql(`SELECT job_id::text, attempt, pid FROM "${schema}".executions`)).toEqual([
      { job_id: transactional.id, attempt: 2, pid: rescuer.pid },
    ]);
    expect(await completedBoth()).toBe(true);
    expect(frozen.alive && rescuer.alive).toBe(true);
  });
});
