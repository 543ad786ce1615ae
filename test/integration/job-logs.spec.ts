import type { INestApplicationContext } from '@nestjs/common';
import { Handle, InvalidJobOptionError, Processor, QueueService, type ActiveJob } from '../../lib';
import { createQueueTester } from '../../lib/testing';
import { createTestApp } from './helpers/app';
import { dropSchema, sql, uniqueSchema } from './helpers/database';
import { waitForJobState } from './helpers/jobs';
import { waitFor } from './helpers/wait-for';

const schema = uniqueSchema('logs');
const thrown = new Map<string, unknown>();

@Processor('logs', { concurrency: 2 })
class LoggingProcessor {
  /** 150 lines in a tight loop, none awaited but the last. */
  @Handle('chatty')
  async chatty(job: ActiveJob) {
    let last: Promise<void> = Promise.resolve();
    for (let i = 0; i < 150; i++) last = job.log(`line ${i}`);
    await last;
  }

  @Handle('long')
  async long(job: ActiveJob) {
    await job.log('x'.repeat(5000));
    // 1,500 two-byte characters (3,000 bytes): cut at a character boundary.
    await job.log('é'.repeat(1500));
    await job.log('a NUL \u0000 inside');
    await job.log('short');
  }

  @Handle('bad')
  bad(job: ActiveJob) {
    try {
      void job.log({ not: 'text' } as never);
    } catch (error) {
      thrown.set(job.id, error);
    }
  }
}

describe('job.log() and getJobLogs()', () => {
  let app: INestApplicationContext;
  let queue: QueueService;

  beforeAll(async () => {
    app = await createTestApp({ schema, providers: [LoggingProcessor], queue: { worker: { pollIntervalMs: 50 } } });
    queue = app.get(QueueService);
    // NOTE: counts the INSERT statements the log table receives (not rows).
    await sql(`CREATE TABLE "${schema}".log_statements (at timestamptz NOT NULL DEFAULT clock_timestamp())`);
    await sql(`CREATE FUNCTION "${schema}".count_log_statements() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN INSERT INTO "${schema}".log_statements DEFAULT VALUES; RETURN NULL; END $$`);
    await sql(`CREATE TRIGGER count_log_statements AFTER INSERT ON "${schema}".queue_jobs_logs FOR EACH STATEMENT EXECUTE FUNCTION "${schema}".count_log_statements()`);
  });
  afterAll(async () => {
    await app?.close();
    await dropSchema(schema);
  });

  it('keeps the last 100 entries, in order, each with its time, written in a few batched statements', async () => {
    const before = Date.now();
    const job = await queue.add('logs', 'chatty', {});
    await waitForJobState(queue, job.id, 'completed');
    const logs = await queue.getJobLogs(job.id);
    expect(logs).toHaveLength(100);
    expect(logs.map((l) => l.message)).toEqual(Array.from({ length: 100 }, (_, i) => `line ${i + 50}`));
    for (const entry of logs) {
      expect(entry.at).toBeInstanceOf(Date);
      expect(entry.at.getTime()).toBeGreaterThanOrEqual(before - 1000);
      expect(entry.truncated).toBe(false);
    }
    const [{ n }] = await sql<{ n: number }>(`SELECT count(*)::int AS n FROM "${schema}".log_statements`);
    expect(n).toBeGreaterThanOrEqual(1);
    expect(n).toBeLessThanOrEqual(3);
    // getJob does not carry the log.
    expect(Object.keys((await queue.getJob(job.id))!)).not.toContain('logs');
    const [{ rows }] = await sql<{ rows: number }>(`SELECT count(*)::int AS rows FROM "${schema}".queue_jobs_logs WHERE job_id = $1`, [job.id]);
    expect(rows).toBe(100);
  });

  it('cuts entries over 2 KB (whole characters) and marks them cut', async () => {
    const job = await queue.add('logs', 'long', {});
    await waitForJobState(queue, job.id, 'completed');
    const logs = await queue.getJobLogs(job.id);
    expect(logs.map((l) => [l.message.length, l.truncated])).toEqual([[2048, true], [1024, true], [14, false], [5, false]]);
    expect(logs[1].message).toBe('é'.repeat(1024));
    expect(logs[2].message).toBe('a NUL \uFFFD inside');
  });

  it('refuses a non-string with InvalidJobOptionError, and an empty log reads as []', async () => {
    const job = await queue.add('logs', 'bad', {});
    await waitForJobState(queue, job.id, 'completed');
    expect(thrown.get(job.id)).toBeInstanceOf(InvalidJobOptionError);
    expect(await queue.getJobLogs(job.id)).toEqual([]);
    await expect(queue.getJobLogs('nope')).rejects.toBeInstanceOf(InvalidJobOptionError);
  });

  it('works under the testing helpers (QueueTester.run), and their clear() empties the logs too', async () => {
    const tester = createQueueTester(app);
    await tester.run('logs', 'long', {});
    const [job] = await queue.getJobs({ queue: 'logs', name: 'long', limit: 1 });
    expect(await queue.getJobLogs(job.id)).toHaveLength(4);
    await tester.clear();
    const [{ n }] = await sql<{ n: number }>(`SELECT count(*)::int AS n FROM "${schema}".queue_jobs_logs`);
    expect(n).toBe(0);
  });

  it('deletes the logs with their jobs by retention', async () => {
    const job = await queue.add('logs', 'chatty', {});
    await waitForJobState(queue, job.id, 'completed');
    expect(await queue.getJobLogs(job.id)).toHaveLength(100);
    const pending = await queue.add('nobody', 'x', {});
    await sql(`INSERT INTO "${schema}".queue_jobs_logs (job_id, at, message) VALUES ($1, now(), 'kept')`, [pending.id]);
    // A second worker process with a 1 ms retention runs the cleaner once at boot.
    const cleaner = await createTestApp({ schema, queue: { retentionMs: 1, worker: {} } });
    try {
      await waitFor('the job and its log to be deleted', async () => (await queue.getJob(job.id)) === null);
      expect(await queue.getJobLogs(job.id)).toEqual([]);
      const [{ left }] = await sql<{ left: number }>(`SELECT count(*)::int AS left FROM "${schema}".queue_jobs_logs WHERE job_id = $1`, [job.id]);
      expect(left).toBe(0);
      // The log of a job that is not finished stays.
      expect((await queue.getJobLogs(pending.id)).map((l) => l.message)).toEqual(['kept']);
    } finally {
      await cleaner.close();
    }
  });
});
