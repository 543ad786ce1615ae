import type { INestApplicationContext } from '@nestjs/common';
import { Client } from 'pg';
import { Handle, JobState, Processor, QueueService, type Job } from '../../lib';
import { createTestApp } from './helpers/app';
import { DATABASE_URL, dropSchema, sql, uniqueSchema } from './helpers/database';
import { waitForJobState } from './helpers/jobs';
import { waitFor } from './helpers/wait-for';

// Issue 9 ("argued by reading"): an outcome write the database cancels for a reason that passes
// (lock_timeout here; statement_timeout, serialization failures and deadlocks alike) is retried,
// not dropped: dropped, the finished job would be rescued and run again.
const schema = uniqueSchema('cretry');
const table = `"${schema}".queue_jobs`;
const runs: string[] = [];
let openGate: () => void = () => undefined;
const gate = () => new Promise<void>((resolve) => (openGate = resolve));

@Processor('gated', { concurrency: 1 })
class GatedProcessor {
  @Handle('wait')
  async wait(job: Job) {
    runs.push(job.id);
    await gate();
    return 'done';
  }
}

describe('outcome writes the database cancels', () => {
  let app: INestApplicationContext;
  const locker = new Client({ connectionString: DATABASE_URL });

  beforeAll(async () => {
    await locker.connect();
    app = await createTestApp({
      schema,
      providers: [GatedProcessor],
      // NOTE: every session of the app gives up waiting for a row lock after 300 ms (55P03).
      typeorm: { extra: { options: '-c lock_timeout=300' } },
      queue: { worker: { pollIntervalMs: 100, lockDurationMs: 3000 } },
    });
  });

  afterAll(async () => {
    await locker.end();
    await app?.close();
    await dropSchema(schema);
  });

  it('a completion cancelled by lock_timeout is retried until written: the job completes exactly once', async () => {
    const queue = app.get(QueueService);
    const job = await queue.add('gated', 'wait', {});
    await waitFor('the handler running', () => runs.length === 1);
    await locker.query('BEGIN');
    await locker.query(`SELECT id FROM ${table} WHERE id = $1 FOR UPDATE`, [job.id]);
    openGate();
    // The completion write waits for the row lock, is cancelled after 300 ms, and must come back.
    const waits = new Set<string>();
    try {
      await waitFor('a completion write retried after lock_timeout cancelled it', async () => {
        const rows = await sql<{ started: string }>(
          `SELECT query_start::text AS started FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%state = ''completed''%' AND query LIKE $1`,
          [`%${schema}%`],
        );
        rows.forEach((r) => waits.add(r.started));
        return waits.size >= 2;
      }, 10_000);
    } finally {
      await locker.query('COMMIT');
    }
    const done = await waitForJobState(queue, job.id, JobState.Completed);
    expect(done.result).toBe('done');
    // Past the lease: a dropped outcome would have let the job be rescued and run again by now.
    await waitFor('the lease length gone by', async () => (await sql<{ late: boolean }>(`SELECT now() > finished_at + interval '3.5 seconds' AS late FROM ${table} WHERE id = $1`, [job.id]))[0].late);
    expect({ runs, attempts: (await queue.getJob(job.id))?.attempts }).toEqual({ runs: [job.id], attempts: 1 });
  });
});
