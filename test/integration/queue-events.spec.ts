import { Injectable, type INestApplicationContext } from '@nestjs/common';
import { Client } from 'pg';
import { Handle, InvalidQueueEventListenerError, OnQueueEvent, Processor, QueueService, type ActiveJob, type QueueEvent, type QueueEventType } from '../../lib';
import { JobLifecycle } from '../../lib/worker/job-lifecycle';
import { GlobalEventDemand } from '../../lib/events/global-event-demand';
import { DataSource } from 'typeorm';
import { createTestApp, createTestDataSource } from './helpers/app';
import { DATABASE_URL, dropSchema, sql, uniqueSchema } from './helpers/database';
import { waitForJobState } from './helpers/jobs';
import { waitFor } from './helpers/wait-for';
import { CapturingLogger } from './helpers/log-capture';

const schema = uniqueSchema('events');

/** One catch-all handler: `ok` returns a result, `boom` always throws, `prog` reports progress first. */
@Processor('ev', { concurrency: 4, defaultJobOptions: { maxAttempts: 2, backoff: { type: 'fixed', delayMs: 10 } } })
class EventProcessor {
  @Handle()
  async run(job: ActiveJob) {
    if (job.name === 'boom') throw new Error('always');
    if (job.name === 'prog') await job.progress(50);
    return job.name === 'ok' ? { fine: true } : 'done';
  }
}

/** Records every local event of every type, in the worker's app. */
@Injectable()
class LocalProbe {
  static events: QueueEvent[] = [];
  static otherQueue: QueueEvent[] = [];

  @OnQueueEvent('active')
  @OnQueueEvent('progress')
  @OnQueueEvent('completed')
  @OnQueueEvent('failed')
  @OnQueueEvent('retrying')
  @OnQueueEvent('cancelled')
  @OnQueueEvent('rescued')
  @OnQueueEvent('blocked')
  @OnQueueEvent('unblocked')
  record(event: QueueEvent) {
    LocalProbe.events.push(event);
  }

  @OnQueueEvent('completed', { queue: 'other' })
  other(event: QueueEvent) {
    LocalProbe.otherQueue.push(event);
  }
}

/** Listeners that throw, reject, or never settle: the worker must not notice. */
@Injectable()
class BadListeners {
  static calls = 0;

  @OnQueueEvent('completed')
  throws() {
    BadListeners.calls++;
    throw new Error('listener broke');
  }

  @OnQueueEvent('completed', { scope: 'local' })
  async rejects() {
    throw new Error('listener rejected');
  }

  @OnQueueEvent('completed')
  hangs() {
    return new Promise(() => undefined);
  }
}

/** Records every global event of every type, in another app (no worker) on the same schema. */
@Injectable()
class GlobalProbe {
  static events: QueueEvent[] = [];

  @OnQueueEvent('active', { scope: 'global' })
  @OnQueueEvent('progress', { scope: 'global' })
  @OnQueueEvent('completed', { scope: 'global' })
  @OnQueueEvent('failed', { scope: 'global' })
  @OnQueueEvent('retrying', { scope: 'global' })
  @OnQueueEvent('cancelled', { scope: 'global' })
  @OnQueueEvent('rescued', { scope: 'global' })
  @OnQueueEvent('blocked', { scope: 'global' })
  @OnQueueEvent('unblocked', { scope: 'global' })
  record(event: QueueEvent) {
    GlobalProbe.events.push(event);
  }

  @OnQueueEvent('completed', { scope: 'global' })
  throws() {
    throw new Error('global listener broke');
  }
}

describe('queue events, local and global, two apps on one schema', () => {
  let worker: INestApplicationContext;
  let watcher: INestApplicationContext | undefined;
  let queue: QueueService;
  // NOTE: one logger for both apps: Nest's static Logger (which the library uses) follows the
  // latest app's logger, whichever app logs.
  const logs = new CapturingLogger();

  beforeAll(async () => {
    worker = await createTestApp({
      schema,
      providers: [EventProcessor, LocalProbe, BadListeners],
      queue: { worker: { pollIntervalMs: 50, lockDurationMs: 1000 } },
      logger: logs,
    });
    queue = worker.get(QueueService);
    watcher = await createTestApp({ schema, providers: [GlobalProbe], queue: { worker: false }, logger: logs, typeorm: { applicationName: `${schema}-watcher` } });
    // The worker learns of the global listener (the listener's notice, or its periodic check).
    await waitFor('the worker to see the global listener', () => worker.get(GlobalEventDemand).wants('completed'));
  });
  afterAll(async () => {
    await watcher?.close();
    await worker?.close();
    await dropSchema(schema);
  });

  const local = (id: string) => LocalProbe.events.filter((e) => e.jobId === id);
  const global = (id: string) => GlobalProbe.events.filter((e) => e.jobId === id);
  const types = (events: QueueEvent[]) => events.map((e) => e.type);

  it('tells active, progress, completed, retrying and failed locally (with results and errors) and globally (ids only)', async () => {
    const ok = await queue.add('ev', 'ok', {});
    const boom = await queue.add('ev', 'boom', {});
    const prog = await queue.add('ev', 'prog', {});
    await waitForJobState(queue, ok.id, 'completed');
    await waitForJobState(queue, boom.id, 'failed');
    await waitForJobState(queue, prog.id, 'completed');
    await waitFor('the local events', () => local(ok.id).length === 2 && local(boom.id).length === 4 && local(prog.id).length === 3);
    expect(types(local(ok.id))).toEqual(['active', 'completed']);
    expect(types(local(boom.id))).toEqual(['active', 'retrying', 'active', 'failed']);
    expect(types(local(prog.id))).toEqual(['active', 'progress', 'completed']);
    expect(local(ok.id)[1]).toMatchObject({ jobId: ok.id, queue: 'ev', name: 'ok', state: 'completed', attempts: 1, scope: 'local', result: { fine: true } });
    expect(local(ok.id)[1].at).toBeInstanceOf(Date);
    expect(local(boom.id)[1]).toMatchObject({ state: 'pending', attempts: 1, error: { message: 'always', attempt: 1 } });
    expect(local(boom.id)[3]).toMatchObject({ state: 'failed', attempts: 2, error: { message: 'always', attempt: 2 } });
    expect(local(prog.id)[1]).toMatchObject({ state: 'active', progress: 50 });

    await waitFor('the global events', () => global(ok.id).length === 2 && global(boom.id).length === 4 && global(prog.id).length === 3);
    expect(types(global(ok.id))).toEqual(['active', 'completed']);
    expect(types(global(boom.id))).toEqual(['active', 'retrying', 'active', 'failed']);
    expect(types(global(prog.id))).toEqual(['active', 'progress', 'completed']);
    expect(global(boom.id)[3]).toMatchObject({ jobId: boom.id, queue: 'ev', name: 'boom', state: 'failed', attempts: 2, scope: 'global' });
    // NOTE: ids, never results: the payload limit is 8,000 bytes.
    expect(global(ok.id)[1].result).toBeUndefined();
    expect(global(boom.id)[3].error).toBeUndefined();
    // A listener filtered to another queue heard none of it.
    expect(LocalProbe.otherQueue).toEqual([]);
  });

  it('tells cancelled, in the cancelling process and globally', async () => {
    const job = await queue.add('nobody-runs-this', 'x', {});
    await queue.cancel(job.id);
    await waitFor('the cancelled events', () => local(job.id).length === 1 && global(job.id).length === 1);
    expect(local(job.id)[0]).toMatchObject({ type: 'cancelled', state: 'cancelled', queue: 'nobody-runs-this', scope: 'local' });
    expect(global(job.id)[0]).toMatchObject({ type: 'cancelled', state: 'cancelled', queue: 'nobody-runs-this', scope: 'global' });
  });

  it('tells rescued when a dead worker\'s lease lapses (and failed too when it spent the last attempt)', async () => {
    const back = await queue.add('nobody-runs-this', 'back', {});
    const spent = await queue.add('nobody-runs-this', 'spent', {});
    await sql(
      `UPDATE "${schema}".queue_jobs SET state = 'active', attempts = 1, claims = 1, max_attempts = CASE WHEN id = $2 THEN 1 ELSE 3 END,
         locked_by = 'dead-worker', started_at = now(), locked_until = now() - interval '1 second' WHERE id IN ($1, $2)`,
      [back.id, spent.id],
    );
    await waitFor('the rescue events', () => local(back.id).length === 1 && local(spent.id).length === 2 && global(back.id).length === 1 && global(spent.id).length === 2);
    expect(local(back.id)[0]).toMatchObject({ type: 'rescued', state: 'pending', attempts: 1, name: 'back' });
    expect(types(local(spent.id))).toEqual(['rescued', 'failed']);
    expect(local(spent.id).every((e) => e.state === 'failed')).toBe(true);
    expect(global(back.id)[0]).toMatchObject({ type: 'rescued', state: 'pending', scope: 'global' });
    expect(types(global(spent.id))).toEqual(['rescued', 'failed']);
  });

  it('relays blocked and unblocked from the lifecycle hub (flows emit them there)', async () => {
    const job = await queue.add('nobody-runs-this', 'flow', {});
    const hub = worker.get(JobLifecycle);
    hub.emit({ type: 'blocked', job: { id: job.id, queue: job.queue, name: job.name }, at: Date.now() });
    hub.emit({ type: 'unblocked', job: { id: job.id, queue: job.queue, name: job.name }, at: Date.now() });
    await waitFor('the flow events', () => local(job.id).length === 2 && global(job.id).length === 2);
    expect(types(local(job.id))).toEqual(['blocked', 'unblocked']);
    expect(types(global(job.id))).toEqual(['blocked', 'unblocked']);
    expect(global(job.id).map((e) => e.state)).toEqual(['blocked', 'pending']);
  });

  it('logs what a listener throws or rejects with, and keeps working past listeners that throw, reject or hang', async () => {
    const before = BadListeners.calls;
    const jobs = await Promise.all(Array.from({ length: 20 }, () => queue.add('ev', 'ok', {})));
    for (const job of jobs) await waitForJobState(queue, job.id, 'completed');
    await waitFor('the throwing listener to be called for each', () => BadListeners.calls - before >= 20);
    await waitFor('the errors to be logged', () =>
      logs.find('error', /BadListeners\.throws threw on the local "completed" event/).length >= 20 &&
      logs.find('error', /BadListeners\.rejects threw on the local "completed" event/).length >= 20 &&
      logs.find('error', /GlobalProbe\.throws threw on the global "completed" event/).length >= 20,
    );
    // The other listeners still heard every completion.
    await waitFor('every completion to be heard', () => jobs.every((j) => local(j.id).some((e) => e.type === 'completed') && global(j.id).some((e) => e.type === 'completed')));
  });

  it('takes its presence again when its LISTEN connection is terminated, and hears events again', async () => {
    // The watcher's LISTEN connection: the one whose last statement told writers it listens.
    const [victim] = await sql<{ pid: number }>(
      `SELECT pid FROM pg_stat_activity WHERE application_name = $1 AND query LIKE '%"t":"listeners"%'`,
      [`${schema}-watcher`],
    );
    expect(victim).toBeDefined();
    await sql(`SELECT pg_terminate_backend($1)`, [victim.pid]);
    await waitFor('a new LISTEN connection with the presence', async () => {
      const rows = await sql<{ pid: number }>(
        `SELECT a.pid FROM pg_stat_activity a JOIN pg_locks l ON l.pid = a.pid AND l.locktype = 'advisory'
         WHERE a.application_name = $1 AND a.pid <> $2`,
        [`${schema}-watcher`, victim.pid],
      );
      return rows.length > 0;
    });
    await waitFor('the worker to see the global listener again', () => worker.get(GlobalEventDemand).wants('completed'));
    const job = await queue.add('ev', 'ok', {});
    await waitFor('the global completion', () => global(job.id).some((e) => e.type === 'completed'));
  });

  it('sends no global event at all once no process listens globally', async () => {
    await watcher!.close();
    watcher = undefined;
    // The presence died with the watcher's connection; the worker's periodic check sees it.
    await waitFor('the worker to see nobody listens', () => !worker.get(GlobalEventDemand).any, 10_000);
    const raw = new Client({ connectionString: DATABASE_URL });
    await raw.connect();
    const payloads: string[] = [];
    raw.on('notification', (n) => payloads.push(n.payload ?? ''));
    try {
      await raw.query(`LISTEN "${schema}.queue_jobs"`);
      const jobs = await queue.addBulk(Array.from({ length: 100 }, () => ({ queue: 'ev', name: 'ok', data: {} })));
      for (const job of jobs) await waitForJobState(queue, job.id, 'completed');
      // The wake-up of the bulk insert arrived, so notifications do reach this connection.
      await waitFor('the insert\'s wake-up', () => payloads.some((p) => p.includes('"t" : "job"') || p.includes('"t":"job"')));
      expect(payloads.filter((p) => p.includes('"t":"ev"'))).toEqual([]);
      // Local listeners still hear everything.
      await waitFor('local completions', () => jobs.every((j) => local(j.id).some((e) => e.type === 'completed')));
    } finally {
      await raw.end();
    }
  });
});

/** Listens globally to `failed` only. */
@Injectable()
class FailedOnly {
  static events: QueueEvent[] = [];

  @OnQueueEvent('failed', { scope: 'global', queue: 'ev' })
  record(event: QueueEvent) {
    FailedOnly.events.push(event);
  }
}

describe('global events: writers send only the types some process listens to', () => {
  const onlySchema = uniqueSchema('events_only');
  let worker: INestApplicationContext;
  let watcher: INestApplicationContext;
  let raw: Client;
  const payloads: string[] = [];

  beforeAll(async () => {
    worker = await createTestApp({ schema: onlySchema, providers: [EventProcessor], queue: { worker: { pollIntervalMs: 50 } } });
    watcher = await createTestApp({ schema: onlySchema, providers: [FailedOnly], queue: { worker: false } });
    await waitFor('the worker to see the listener', () => worker.get(GlobalEventDemand).wants('failed'));
    raw = new Client({ connectionString: DATABASE_URL });
    await raw.connect();
    raw.on('notification', (n) => payloads.push(n.payload ?? ''));
    await raw.query(`LISTEN "${onlySchema}.queue_jobs"`);
  });
  afterAll(async () => {
    await raw?.end();
    await watcher?.close();
    await worker?.close();
    await dropSchema(onlySchema);
  });

  it('sends failed, and neither active, retrying nor completed', async () => {
    const queue = worker.get(QueueService);
    const ok = await queue.add('ev', 'ok', {});
    await waitForJobState(queue, ok.id, 'completed');
    const boom = await queue.add('ev', 'boom', {});
    await waitForJobState(queue, boom.id, 'failed');
    await waitFor('the failure to be heard', () => FailedOnly.events.some((e) => e.jobId === boom.id));
    const sentEvents = () => payloads.filter((p) => p.startsWith('{"t":"ev"')).flatMap((p) => (JSON.parse(p) as { e: unknown[][] }).e);
    // NOTE: the watcher's connection and ours read the same NOTIFY on their own sockets, so ours may
    // hear it later. The writer sends its batches one after the other, in event order, and `ok` was
    // done before `boom` was added: any event that should not have gone out comes before the failure.
    await waitFor('our connection to hear the failure', () => sentEvents().some((e) => e[1] === boom.id && e[5] === 'failed'));
    const sent = sentEvents();
    // Code 4 is `failed` (QUEUE_EVENT_TYPES order); nothing else went out.
    expect(sent).toEqual([[4, boom.id, 'ev', 'boom', 2, 'failed', expect.any(Number)]]);
    expect(FailedOnly.events.map((e) => [e.type, e.jobId])).toEqual([['failed', boom.id]]);
  });
});

describe('@OnQueueEvent misuse fails the boot', () => {
  const badSchema = uniqueSchema('events_bad');
  let dataSource: DataSource;
  beforeAll(async () => {
    dataSource = await createTestDataSource();
  });
  afterAll(async () => {
    await dataSource?.destroy();
    await dropSchema(badSchema);
  });

  it.each([
    ['an unknown type', 'finished', {}, /invalid type "finished"; expected one of active, progress/],
    ['an unknown scope', 'completed', { scope: 'world' }, /invalid scope "world"; expected 'local' or 'global'/],
    ['an unknown option', 'completed', { queues: 'a' }, /invalid queues/],
    ['a bad queue name', 'completed', { queue: ' padded ' }, /invalid queue " padded "/],
  ])('%s', async (_what, type, options, message) => {
    @Injectable()
    class Misused {
      @OnQueueEvent(type as QueueEventType, options as never)
      on() {}
    }
    const boot = () => createTestApp({ schema: badSchema, providers: [Misused], queue: { worker: false }, dataSource });
    await expect(boot()).rejects.toBeInstanceOf(InvalidQueueEventListenerError);
    await expect(boot()).rejects.toThrow(message);
  });
});
