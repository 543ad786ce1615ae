import type { INestApplicationContext } from '@nestjs/common';
import { Handle, JobLeaseLostError, JobState, Processor, QueueService, type ActiveJob } from '../../../lib';
import { createTestApp } from '../helpers/app';
import { DATABASE_URL, dropSchema, sql, uniqueSchema } from '../helpers/database';
import { HandlerRuns, pause } from '../helpers/handler-runs';
import { waitForJobState } from '../helpers/jobs';
import { TcpProxy } from '../helpers/tcp-proxy';
import { waitFor } from '../helpers/wait-for';

/**
 * A heartbeat that hangs (the network went silent: a frozen proxy, no error, no answer) must not
 * leave a running attempt's signal untouched while its lease lapses and another worker reruns the
 * job: the worker aborts the attempt from a local deadline (the last confirmed renewal's send time
 * plus the lease, minus a margin), whatever the heartbeat statement is doing.
 */
const schema = uniqueSchema('deadline');
const LEASE = 1500;
const runs = new HandlerRuns();

@Processor('deadline', { concurrency: 2 })
class DeadlineProcessor {
  /** Its first claim runs until its signal fires (at most 20 s); later claims return at once. */
  @Handle('hold')
  async hold(job: ActiveJob) {
    const run = runs.start(job);
    if (job.claims === 1) await pause(20_000, job.signal);
    runs.end(run);
  }
}

describe('the local lease deadline', () => {
  const target = new URL(DATABASE_URL);
  const proxy = new TcpProxy(target.hostname, Number(target.port || 5432));
  let frozenApp: INestApplicationContext | undefined;
  let rescuer: INestApplicationContext | undefined;

  afterAll(async () => {
    // NOTE: cut, not thawed: the frozen app's connections then fail at once and it can close.
    await proxy.stop();
    await frozenApp?.close();
    await rescuer?.close();
    await dropSchema(schema);
  });

  it('aborts a running attempt before its lease lapses when its heartbeat hangs; the rerun elsewhere does not overlap it', async () => {
    await proxy.start();
    frozenApp = await createTestApp({
      schema,
      providers: [DeadlineProcessor],
      typeorm: { url: TcpProxy.urlThrough(DATABASE_URL, proxy.port), connectTimeoutMS: 2000 },
      queue: { worker: { lockDurationMs: LEASE, pollIntervalMs: 50, listen: false } },
    });
    const job = await frozenApp.get(QueueService).add('deadline', 'hold', {});
    const [first] = await waitFor('the first run to start', () => (runs.of(job.id).length > 0 ? runs.of(job.id) : undefined));
    proxy.freeze();
    // The lease the frozen worker holds now; only its own heartbeats could extend it, and none
    // gets through any more, so the lease lapses no earlier than this.
    const [{ until }] = await sql<{ until: number }>(
      `SELECT floor(extract(epoch FROM locked_until) * 1000)::float8 AS until FROM "${schema}".queue_jobs WHERE id = $1 AND locked_by = $2`,
      [job.id, first.worker],
    );
    rescuer = await createTestApp({
      schema,
      providers: [DeadlineProcessor],
      queue: { worker: { lockDurationMs: LEASE, pollIntervalMs: 50, listen: false } },
    });
    await waitFor('the frozen worker to abort its attempt', () => first.ended, 10_000);
    expect(first.reason).toBeInstanceOf(JobLeaseLostError);
    expect(first.aborted!).toBeLessThan(until);
    const queue = rescuer.get(QueueService);
    const done = await waitForJobState(queue, job.id, JobState.Completed, 15_000);
    expect(done.attempts).toBe(2);
    expect(runs.of(job.id)).toHaveLength(2);
    expect(runs.overlaps()).toEqual([]);
  });
});
