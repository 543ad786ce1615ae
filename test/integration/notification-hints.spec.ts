import type { INestApplicationContext } from '@nestjs/common';
import { Handle, JobCancelledError, JobState, Processor, QueueService, type ActiveJob } from '../../lib';
import { createTestApp } from './helpers/app';
import { dropSchema, sql, uniqueSchema } from './helpers/database';
import { HandlerRuns, pause } from './helpers/handler-runs';
import { waitForJobState } from './helpers/jobs';
import { waitFor } from './helpers/wait-for';

/**
 * PostgreSQL has no privileges on NOTIFY channels: any session that can connect can send on the
 * job table's channel. A cancel notice is therefore only a hint that makes the worker check the
 * row at once (a heartbeat); only the row itself can abort an attempt.
 */
const schema = uniqueSchema('hints');
const runs = new HandlerRuns();
// NOTE: a long lease: its heartbeats come every 10 s, so a renewal or an abort within a few
// seconds can only come from a notification.
const LEASE = 30_000;

@Processor('hints', { concurrency: 2 })
class HintProcessor {
  @Handle('wait')
  async wait(job: ActiveJob) {
    const run = runs.start(job);
    await pause(25_000, job.signal);
    runs.end(run);
  }
}

const lockedUntil = async (id: string) =>
  (await sql<{ until: number }>(`SELECT floor(extract(epoch FROM locked_until) * 1000)::float8 AS until FROM "${schema}".queue_jobs WHERE id = $1`, [id]))[0].until;

describe('cancel notifications are hints', () => {
  let app: INestApplicationContext;
  let queue: QueueService;

  beforeAll(async () => {
    app = await createTestApp({ schema, providers: [HintProcessor], queue: { worker: { lockDurationMs: LEASE, pollIntervalMs: 50 } } });
    queue = app.get(QueueService);
  });

  afterAll(async () => {
    await app?.close();
    await dropSchema(schema);
  });

  it('forged cancel notices from a plain session do not abort a running job; a real cancel() still does, promptly', async () => {
    const job = await queue.add('hints', 'wait', {});
    const [run] = await waitFor('the job to start', () => (runs.of(job.id).length ? runs.of(job.id) : undefined));
    const before = await lockedUntil(job.id);
    for (let i = 0; i < 5; i++) {
      await sql(`SELECT pg_notify($1, $2)`, [`${schema}.queue_jobs`, JSON.stringify({ t: 'cancel', id: job.id })]);
    }
    await sql(`SELECT pg_notify($1, $2)`, [`${schema}.queue_jobs`, 'not json at all']);
    // The notices make the worker check the row: its lease is renewed (the row says it still holds it).
    await waitFor('a renewal or an abort after the notices', async () => run.aborted || (await lockedUntil(job.id)) > before, 5000);
    expect(run.aborted).toBeUndefined();
    expect((await queue.getJob(job.id))?.state).toBe(JobState.Active);

    const cancelledAt = Date.now();
    await queue.cancel(job.id);
    await waitFor('the real cancel to abort the run', () => run.aborted, 5000);
    expect(run.reason).toBeInstanceOf(JobCancelledError);
    expect(run.aborted! - cancelledAt).toBeLessThan(3000);
    expect((await waitForJobState(queue, job.id, JobState.Cancelled)).attempts).toBe(1);
  });
});
