import type { INestApplicationContext } from '@nestjs/common';
import {
  Handle,
  InvalidJobOptionError,
  InvalidJobStateError,
  JobDependencyError,
  JobState,
  Processor,
  QueueService,
  type ActiveJob,
  type FlowJob,
  type JobChild,
} from '../../lib';
import { DataSource } from 'typeorm';
import { JobLifecycle, type JobLifecycleEvent } from '../../lib/worker/job-lifecycle';
import { createTestApp } from './helpers/app';
import { createQueueTester } from '../../lib/testing';
import { SCHEMA_STEPS, writeSchemaVersion } from '../../lib/database/migrations/job-table.ddl';
import { createTableNaming } from '../../lib/database/table-naming';
import { Client } from 'pg';
import { DATABASE_URL, dropSchema, sql, uniqueSchema } from './helpers/database';
import { waitForJobState } from './helpers/jobs';
import { waitFor } from './helpers/wait-for';

const schema = uniqueSchema('flows');

/** What parents saw of their children when they ran, by job id. */
const seen = new Map<string, JobChild[]>();
/** Jobs whose handler should fail (for good: maxAttempts 1 is set on them). */
const failing = new Set<string>();
/** Jobs whose handler waits until released (id -> release). */
const holds = new Map<string, () => void>();

@Processor('flow-q', { concurrency: 8, defaultJobOptions: { maxAttempts: 1 } })
class FlowProcessor {
  @Handle('step')
  async step(job: ActiveJob<{ tag: string }>) {
    if (failing.has(job.data.tag)) throw new Error(`step ${job.data.tag} broke`);
    if (job.data.tag.startsWith('hold')) await new Promise<void>((resolve) => holds.set(job.data.tag, resolve));
    return { tag: job.data.tag };
  }

  /** Completes in a transaction with its effect (the trigger settles its parent in that same transaction). */
  @Handle('tx-step')
  txStep(job: ActiveJob<{ tag: string }>) {
    return job.transaction(async (manager) => {
      await manager.query(`SELECT 1`);
      return { tag: job.data.tag, tx: true };
    });
  }

  @Handle('parent')
  async parent(job: ActiveJob<{ tag: string }>) {
    const children = await job.getChildren();
    seen.set(job.id, children);
    return { children: children.length };
  }
}

/** Run only by the tester's app (no worker), so the main worker never claims its jobs. */
@Processor('tester-q')
class TesterProcessor {
  @Handle('leaf')
  leaf(job: ActiveJob<{ n: number }>) {
    return job.data.n;
  }

  @Handle('sum')
  async sum(job: ActiveJob) {
    return (await job.getChildren()).reduce((total, c) => total + (c.result as number), 0);
  }
}

/** Flow jobs of flow-q (see FlowProcessor). */
const step = (tag: string): FlowJob => ({ queue: 'flow-q', name: 'step', data: { tag } });
const parentOf = (tag: string, children: FlowJob[], extra: Pick<FlowJob, 'onChildFailure'> = {}): FlowJob<{ tag: string }> => ({
  queue: 'flow-q',
  name: 'parent',
  data: { tag },
  children,
  ...extra,
});

describe('flows and dependencies', () => {
  const apps: INestApplicationContext[] = [];
  let queue: QueueService;
  const events: JobLifecycleEvent[] = [];

  beforeAll(async () => {
    const app = await createTestApp({ schema, providers: [FlowProcessor], queue: { worker: { pollIntervalMs: 100 } } });
    apps.push(app);
    queue = app.get(QueueService);
    app.get(JobLifecycle).subscribe((e) => {
      if (e.type === 'blocked' || e.type === 'unblocked' || (e.type === 'failed' && e.job.name === 'parent')) events.push(e);
    });
  });
  afterAll(async () => {
    for (const app of apps.reverse()) await app.close();
    await dropSchema(schema);
  });

  const state = async (id: string) => (await queue.getJob(id))!.state;

  it('addFlow inserts the tree atomically; parents run after all their children, at any depth, and see their results', async () => {
    const root = await queue.addFlow(parentOf('root', [step('a'), parentOf('mid', [step('b1'), step('b2')])]));
    expect(root).toMatchObject({ state: JobState.Blocked, parentId: null });
    expect(root.children.map((c) => c.state)).toEqual([JobState.Pending, JobState.Blocked]);
    expect(root.children[1].children.every((c) => c.parentId === root.children[1].id)).toBe(true);
    expect(events).toEqual(expect.arrayContaining([expect.objectContaining({ type: 'blocked', job: { id: root.id, queue: 'flow-q', name: 'parent' } })]));

    const done = await waitForJobState(queue, root.id, JobState.Completed);
    expect(done.result).toEqual({ children: 2 });
    const rows = await sql<{ id: string; started_at: Date; finished_at: Date; parent_id: string | null }>(
      `SELECT id::text, started_at, finished_at, parent_id::text FROM "${schema}".queue_jobs WHERE id >= $1 ORDER BY id`,
      [root.id],
    );
    expect(rows).toHaveLength(5);
    for (const row of rows.filter((r) => r.parent_id !== null)) {
      const parent = rows.find((r) => r.id === row.parent_id)!;
      expect(parent.started_at.getTime()).toBeGreaterThanOrEqual(row.finished_at.getTime());
    }
    const mid = root.children[1];
    expect(seen.get(mid.id)!.map((c) => [c.state, c.result])).toEqual([
      [JobState.Completed, { tag: 'b1' }],
      [JobState.Completed, { tag: 'b2' }],
    ]);
    expect((await queue.getJob(mid.children[0].id))!.parentId).toBe(mid.id);
    // The worker that completed the last child of each told 'unblocked'.
    await waitFor('unblocked events of root and mid', () =>
      [root.id, mid.id].every((id) => events.some((e) => e.type === 'unblocked' && e.job.id === id)),
    );
  });

  it("onChildFailure 'fail': a child failed for good fails its parent at once, naming it; retry() of the child puts the parent back to blocked", async () => {
    failing.add('f1');
    const root = await queue.addFlow(parentOf('froot', [step('hold-f0'), step('f1')]));
    const failed = await waitForJobState(queue, root.id, JobState.Failed);
    const child = root.children[1];
    expect(failed.lastError).toMatchObject({ name: 'JobDependencyFailedError', dependencyId: child.id });
    expect(failed.lastError!.message).toContain(`Dependency ${child.id}`);
    // The worker whose write failed the child tells the parent's failure too.
    const told = await waitFor('the parent\'s failed event', () => events.find((e) => e.type === 'failed' && e.job.id === root.id));
    expect(told).toMatchObject({ job: { state: JobState.Failed } });
    expect(told.type === 'failed' && JSON.parse(told.error)).toMatchObject({ name: 'JobDependencyFailedError', dependencyId: child.id });
    // A retry of the parent itself would only fail again: refused, naming the child.
    await expect(queue.retry(root.id)).rejects.toThrow(JobDependencyError);
    await expect(queue.retry(root.id)).rejects.toMatchObject({ reason: 'dependency-failed', dependencyIds: [child.id] });

    failing.delete('f1');
    await queue.retry(child.id);
    expect(await state(root.id)).toBe(JobState.Blocked);
    // Told by this process (which retried), once: blocked at insert, blocked again now.
    const blockedTold = () => events.filter((e) => e.type === 'blocked' && e.job.id === root.id).length;
    expect(blockedTold()).toBe(2);
    await waitForJobState(queue, child.id, JobState.Completed);
    expect(await state(root.id)).toBe(JobState.Blocked); // hold-f0 still runs
    (await waitFor('hold-f0 to run', () => holds.get('hold-f0')))();
    await waitForJobState(queue, root.id, JobState.Completed);
    // NOTE: notices arrive in commit order: once the release is told, no late duplicate of the
    // retry's blocked (from a worker hearing its notice) can still come.
    await waitFor('the unblocked event of the parent', () => events.some((e) => e.type === 'unblocked' && e.job.id === root.id));
    expect(blockedTold()).toBe(2);
  });

  it('a failure climbs the flow: a leaf failed for good fails its parent and grandparent, each told as failed; its retry revives both', async () => {
    failing.add('deep');
    const root = await queue.addFlow(parentOf('droot', [parentOf('dmid', [step('deep')])]));
    const mid = root.children[0];
    const failedRoot = await waitForJobState(queue, root.id, JobState.Failed);
    expect(failedRoot.lastError).toMatchObject({ dependencyId: mid.id, dependencyState: 'failed' });
    expect((await queue.getJob(mid.id))!.lastError).toMatchObject({ dependencyId: mid.children[0].id });
    await waitFor('failed events of mid and root', () => [mid.id, root.id].every((id) => events.some((e) => e.type === 'failed' && e.job.id === id)));
    // And back down: a retry of the leaf puts both back to blocked, and the flow completes.
    failing.delete('deep');
    await queue.retry(mid.children[0].id);
    expect([await state(mid.id), await state(root.id)]).toEqual([JobState.Blocked, JobState.Blocked]);
    await waitForJobState(queue, root.id, JobState.Completed);
  });

  it("onChildFailure 'continue': the parent runs once every child is finished and sees the failure", async () => {
    failing.add('c1');
    const root = await queue.addFlow(parentOf('croot', [step('c0'), step('c1')], { onChildFailure: 'continue' }));
    await waitForJobState(queue, root.id, JobState.Completed);
    expect(seen.get(root.id)!.map((c) => c.state)).toEqual([JobState.Completed, JobState.Failed]);
    expect(seen.get(root.id)![1].lastError).toMatchObject({ message: 'step c1 broke' });
  });

  it('cancel(parent) cancels its unfinished descendants, aborting the running ones; a cancelled child fails a blocked parent', async () => {
    const root = await queue.addFlow(parentOf('xroot', [step('x0'), parentOf('xmid', [step('hold-x1')])]));
    await waitForJobState(queue, root.children[0].id, JobState.Completed);
    await waitForJobState(queue, root.children[1].children[0].id, JobState.Active);
    expect((await queue.cancel(root.id)).state).toBe(JobState.Cancelled);
    expect(await state(root.children[1].id)).toBe(JobState.Cancelled);
    expect(await state(root.children[1].children[0].id)).toBe(JobState.Cancelled);
    expect(await state(root.children[0].id)).toBe(JobState.Completed); // finished: left alone
    holds.get('hold-x1')?.();
    await expect(queue.cancel(root.children[0].id)).rejects.toThrow(InvalidJobStateError);

    const other = await queue.addFlow(parentOf('yroot', [step('hold-y0')]));
    await waitForJobState(queue, other.children[0].id, JobState.Active);
    await queue.cancel(other.children[0].id);
    const parent = await waitForJobState(queue, other.id, JobState.Failed);
    expect(parent.lastError).toMatchObject({ dependencyId: other.children[0].id, dependencyState: 'cancelled' });
    // The cancelling process tells the parent's failure (the notice names no worker).
    await waitFor('the failed event of the parent', () => events.some((e) => e.type === 'failed' && e.job.id === other.id));
    holds.get('hold-y0')?.();
  });

  it('add(..., { dependsOn }) waits for existing jobs; already completed ones count as done', async () => {
    const done = await queue.add('flow-q', 'step', { tag: 'd0' });
    await waitForJobState(queue, done.id, JobState.Completed);
    const running = await queue.add('flow-q', 'step', { tag: 'hold-d1' });
    await waitForJobState(queue, running.id, JobState.Active);
    const dependent = await queue.add('flow-q', 'parent', { tag: 'dep' }, { dependsOn: [done.id, running.id] });
    expect(dependent).toMatchObject({ state: JobState.Blocked, parentId: null });
    expect(await state(dependent.id)).toBe(JobState.Blocked);
    (await waitFor('hold-d1 to run', () => holds.get('hold-d1')))();
    await waitForJobState(queue, dependent.id, JobState.Completed);
    expect(seen.get(dependent.id)!.map((c) => c.id)).toEqual([done.id, running.id]);

    // All done already: pending at once.
    const free = await queue.add('flow-q', 'step', { tag: 'd2' }, { dependsOn: [done.id] });
    expect(free.state).toBe(JobState.Pending);
    await waitForJobState(queue, free.id, JobState.Completed);
  });

  it('dependsOn an id that does not exist, or bad dependency options, is refused with a typed error and nothing is stored', async () => {
    const before = await sql<{ n: number }>(`SELECT count(*)::int AS n FROM "${schema}".queue_jobs`);
    const existing = await queue.add('flow-q', 'step', { tag: 'e0' }, { delayMs: 60_000 });
    await expect(queue.add('flow-q', 'step', { tag: 'e1' }, { dependsOn: [existing.id, '999999999'] })).rejects.toMatchObject({
      name: 'JobDependencyError',
      reason: 'not-found',
      dependencyIds: ['999999999'],
    });
    const [{ n }] = await sql<{ n: number }>(`SELECT count(*)::int AS n FROM "${schema}".queue_jobs`);
    expect(n).toBe(before[0].n + 1);
    const [{ flagged }] = await sql<{ flagged: boolean | null }>(`SELECT has_dependents AS flagged FROM "${schema}".queue_jobs WHERE id = $1`, [existing.id]);
    expect(flagged).toBeNull();
    const [{ edges }] = await sql<{ edges: number }>(`SELECT count(*)::int AS edges FROM "${schema}".queue_jobs_deps WHERE depends_on = $1`, [existing.id]);
    expect(edges).toBe(0);

    for (const options of [
      { dependsOn: [] },
      { dependsOn: ['1', '1'] },
      { dependsOn: ['x'] },
      { dependsOn: [existing.id], unique: { key: 'k' } },
      { onChildFailure: 'continue' as const },
      { dependsOn: [existing.id], onChildFailure: 'sometimes' as never },
    ]) {
      await expect(queue.add('flow-q', 'step', {}, options)).rejects.toThrow(InvalidJobOptionError);
    }
    await expect(queue.addBulk([{ queue: 'flow-q', name: 'step', data: {}, options: { dependsOn: [existing.id] } }])).rejects.toThrow(/jobs\[0\]\.options\.dependsOn/);
    await expect(queue.addFlow({ queue: 'flow-q', name: 'parent', data: {}, children: [{ queue: 'flow-q', name: 'step', data: {}, options: { unique: { key: 'k' } } as never }] })).rejects.toThrow(
      /flow\.children\[0\]\.options\.unique/,
    );
    await expect(queue.addFlow({ queue: 'flow-q', name: 'parent', data: {}, children: [{ queue: 'flow-q', name: 'step', data: {}, chilren: [] } as never] })).rejects.toThrow(
      /flow\.children\[0\]\.chilren.*did you mean flow\.children\[0\]\.children/,
    );
    const [{ n: after }] = await sql<{ n: number }>(`SELECT count(*)::int AS n FROM "${schema}".queue_jobs`);
    expect(after).toBe(n);
    await queue.cancel(existing.id);
  });

  it('a dependency that already failed fails the new job at once; retry() of the dependency puts it back to blocked', async () => {
    failing.add('g0');
    const broken = await queue.add('flow-q', 'step', { tag: 'g0' });
    await waitForJobState(queue, broken.id, JobState.Failed);
    const dependent = await queue.add('flow-q', 'step', { tag: 'g1' }, { dependsOn: [broken.id] });
    expect(dependent.state).toBe(JobState.Failed);
    expect(dependent.lastError).toMatchObject({ name: 'JobDependencyFailedError', dependencyId: broken.id });
    failing.delete('g0');
    await queue.retry(broken.id);
    expect(await state(dependent.id)).toBe(JobState.Blocked);
    await waitForJobState(queue, dependent.id, JobState.Completed);
  });

  it('getCounts and getJobs know the blocked state', async () => {
    const root = await queue.addFlow({ queue: 'count-q', name: 'p', data: {}, children: [{ queue: 'count-q', name: 'c', data: {} }] });
    expect(await queue.getCounts('count-q')).toEqual({ pending: 1, active: 0, completed: 0, failed: 0, cancelled: 0, blocked: 1 });
    expect((await queue.getJobs({ queue: 'count-q' })).map((j) => [j.state, j.parentId])).toEqual([
      [JobState.Pending, root.id],
      [JobState.Blocked, null],
    ]);
    await queue.cancel(root.id);
    expect(await queue.getCounts('count-q')).toMatchObject({ cancelled: 2, blocked: 0, pending: 0 });
  });

  it('retention keeps a finished child while its parent still waits, and deletes dependency rows with their jobs', async () => {
    const Q = `"${schema}".queue_jobs`;
    const D = `"${schema}".queue_jobs_deps`;
    // No processor runs ret-q: the test moves the jobs itself (the trigger settles as for a worker).
    const waiting = await queue.addFlow({ queue: 'ret-q', name: 'p', data: {}, children: [{ queue: 'ret-q', name: 'c', data: {} }, { queue: 'ret-q', name: 'c', data: {} }] });
    const finished = await queue.addFlow({ queue: 'ret-q', name: 'p', data: {}, children: [{ queue: 'ret-q', name: 'c', data: {} }] });
    const old = `finished_at = now() - interval '2 hours'`;
    await sql(`UPDATE ${Q} SET state = 'completed', ${old} WHERE id = $1`, [waiting.children[0].id]);
    await sql(`UPDATE ${Q} SET state = 'completed', ${old} WHERE id = $1`, [finished.children[0].id]);
    await sql(`UPDATE ${Q} SET state = 'completed', ${old} WHERE id = $1`, [finished.id]);
    expect(await state(waiting.id)).toBe(JobState.Blocked);

    const cleaner = await createTestApp({ schema, queue: { retentionMs: 60 * 60 * 1000, worker: { pollIntervalMs: 60_000 } } });
    apps.push(cleaner);
    await waitFor('the finished flow to be deleted', async () => (await sql(`SELECT id FROM ${Q} WHERE id = ANY($1::bigint[])`, [[finished.id, finished.children[0].id]])).length === 0);
    expect(await sql(`SELECT * FROM ${D} WHERE job_id = $1 OR depends_on = $2`, [finished.id, finished.children[0].id])).toEqual([]);
    // The waiting parent still sees its finished child.
    expect(await state(waiting.children[0].id)).toBe(JobState.Completed);
    expect((await sql(`SELECT depends_on::text FROM ${D} WHERE job_id = $1 ORDER BY depends_on`, [waiting.id])).map((r) => r.depends_on)).toEqual(
      waiting.children.map((c) => c.id),
    );
    await queue.cancel(waiting.id);
  });

  it('a child completed by job.transaction() releases its parent; dependsOn and addFlow in a rolled-back transaction store nothing', async () => {
    const root = await queue.addFlow(parentOf('troot', [{ queue: 'flow-q', name: 'tx-step', data: { tag: 't0' } }]));
    await waitForJobState(queue, root.id, JobState.Completed);
    expect(seen.get(root.id)!.map((c) => c.result)).toEqual([{ tag: 't0', tx: true }]);

    const base = await queue.add('flow-q', 'step', { tag: 'm0' }, { delayMs: 60_000 });
    const dataSource = apps[0].get(DataSource);
    let inside = '';
    await expect(
      dataSource.transaction(async (manager) => {
        inside = (await queue.add('flow-q', 'step', { tag: 'm1' }, { dependsOn: [base.id], manager })).id;
        throw new Error('roll back');
      }),
    ).rejects.toThrow('roll back');
    expect(inside).not.toBe('');
    expect(await queue.getJob(inside)).toBeNull();
    // A flow in the user's transaction: all of it, or (rolled back) none of it.
    let flowIds: string[] = [];
    await expect(
      dataSource.transaction(async (manager) => {
        const flow = await queue.addFlow(parentOf('mf', [step('mf0')]), { manager });
        flowIds = [flow.id, flow.children[0].id];
        throw new Error('roll back');
      }),
    ).rejects.toThrow('roll back');
    expect(await sql(`SELECT id FROM "${schema}".queue_jobs WHERE id = ANY($1::bigint[])`, [flowIds])).toEqual([]);
    const committed = await dataSource.transaction((manager) =>
      queue.addFlow(parentOf('mc', [step('mc0')]), { manager }),
    );
    await waitForJobState(queue, committed.id, JobState.Completed);
    await expect(queue.addFlow({ queue: 'flow-q', name: 'parent', data: {} }, { manger: null } as never)).rejects.toThrow(/options\.manger.*did you mean options\.manager/);
    expect(await sql(`SELECT * FROM "${schema}".queue_jobs_deps WHERE depends_on = $1`, [base.id])).toEqual([]);
    await queue.cancel(base.id);
  });

  it('a cancel of a flow that deadlocks with a completion of one of its children is tried again, and wins', async () => {
    const root = await queue.addFlow({ queue: 'dead-q', name: 'p', data: {}, children: [{ queue: 'dead-q', name: 'c', data: {} }] });
    const child = root.children[0];
    const other = new Client({ connectionString: DATABASE_URL });
    await other.connect();
    try {
      // The other session holds the child (as a completion does), then wants the parent.
      await other.query('BEGIN');
      await other.query(`SELECT 1 FROM "${schema}".queue_jobs WHERE id = $1 FOR UPDATE`, [child.id]);
      const cancelled = queue.cancel(root.id);
      await waitFor('the cancel to wait for the child', async () => {
        const rows = await sql(`SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%WITH RECURSIVE tree%'`);
        return rows.length > 0;
      });
      // The cycle: PostgreSQL aborts the cancel (it waited first), which is tried again after this commits.
      await other.query(`UPDATE "${schema}".queue_jobs SET priority = priority WHERE id = $1`, [root.id]);
      await other.query('COMMIT');
      expect((await cancelled).state).toBe(JobState.Cancelled);
    } finally {
      await other.end();
    }
    expect(await state(child.id)).toBe(JobState.Cancelled);
  });

  it("schema step 5's flows part goes down to step 4 (blocked jobs failed, naming why) and up again", async () => {
    const own = uniqueSchema('flows_down');
    const n = createTableNaming(own);
    const producer = await createTestApp({ schema: own, queue: { worker: false } });
    try {
      const root = await producer.get(QueueService).addFlow({ queue: 'q', name: 'p', data: {}, children: [{ queue: 'q', name: 'c', data: {} }] });
      const step5 = SCHEMA_STEPS.find((s) => s.version === 5)!;
      for (const statement of [...step5.down(n), writeSchemaVersion(n, 4)]) await sql(statement);
      const [parent] = await sql<{ state: string; last_error: { name: string } }>(`SELECT state, last_error FROM ${n.qualified} WHERE id = $1`, [root.id]);
      expect(parent).toMatchObject({ state: 'failed', last_error: { name: 'SchemaDowngradeError' } });
      expect(await sql(`SELECT to_regclass($1) AS t`, [n.dependenciesQualified])).toEqual([{ t: null }]);
      const columns = await sql<{ c: string }>(`SELECT column_name AS c FROM information_schema.columns WHERE table_schema = $1 AND table_name = 'queue_jobs'`, [own]);
      expect(columns.map((r) => r.c)).not.toContain('parent_id');
      await expect(sql(`UPDATE ${n.qualified} SET state = 'blocked' WHERE id = $1`, [root.id])).rejects.toThrow(/state_check/);
    } finally {
      await producer.close();
    }
    const again = await createTestApp({ schema: own, queue: { worker: false } });
    try {
      const root = await again.get(QueueService).addFlow({ queue: 'q', name: 'p', data: {}, children: [{ queue: 'q', name: 'c', data: {} }] });
      expect(root.state).toBe(JobState.Blocked);
    } finally {
      await again.close();
      await dropSchema(own);
    }
  });

  it("the testing helpers' drain() runs a flow to the end in the test's process", async () => {
    const app = await createTestApp({ schema, providers: [TesterProcessor], queue: { worker: false } });
    apps.push(app);
    const tester = createQueueTester(app);
    const root = await app.get(QueueService).addFlow({
      queue: 'tester-q',
      name: 'sum',
      data: {},
      children: [1, 2, 3].map((n) => ({ queue: 'tester-q', name: 'leaf', data: { n } })),
    });
    expect(await tester.drain('tester-q')).toMatchObject({ completed: 4, failed: 0 });
    expect((await queue.getJob(root.id))!).toMatchObject({ state: JobState.Completed, result: 6 });
    await expect(tester.run('tester-q', 'sum', {}, { dependsOn: [root.id] })).rejects.toThrow(/Invalid dependsOn.*drain\(\)/);
  });

  it("a child's claim does not touch its parent: it is claimed while another session holds the parent's row", async () => {
    // The child is due once the parent's row is surely locked below.
    const root = await queue.addFlow(parentOf('lroot', [{ ...step('hold-l0'), options: { delayMs: 1000 } }]));
    const other = new Client({ connectionString: DATABASE_URL });
    await other.connect();
    try {
      await other.query('BEGIN');
      await other.query(`SELECT 1 FROM "${schema}".queue_jobs WHERE id = $1 FOR UPDATE`, [root.id]);
      expect(await state(root.children[0].id)).toBe(JobState.Pending);
      // Claimed (pending -> active) although the parent's row is locked.
      await waitForJobState(queue, root.children[0].id, JobState.Active, 5_000);
      await other.query('COMMIT');
    } finally {
      await other.end();
    }
    (await waitFor('hold-l0 to run', () => holds.get('hold-l0')))();
    await waitForJobState(queue, root.id, JobState.Completed);
  });

  it('dependsOn a job that completes during the add: never counted twice, never missed (200 pairs at once)', async () => {
    const pairs = await Promise.all(
      Array.from({ length: 200 }, async (_, i) => {
        const first = await queue.add('flow-q', 'step', { tag: `r${i}` });
        // NOTE: the worker is woken by the first add; the second races its completion.
        const second = await queue.add('flow-q', 'step', { tag: `s${i}` }, { dependsOn: [first.id] });
        return { first, second };
      }),
    );
    expect(new Set(pairs.map((p) => p.second.state))).not.toContain(JobState.Failed);
    await waitFor('every dependent to complete', async () => {
      const [{ n }] = await sql<{ n: number }>(`SELECT count(*)::int AS n FROM "${schema}".queue_jobs WHERE id = ANY($1::bigint[]) AND state = 'completed'`, [
        pairs.map((p) => p.second.id),
      ]);
      return n === pairs.length;
    });
    const counters = await sql<{ deps_pending: number }>(`SELECT DISTINCT deps_pending FROM "${schema}".queue_jobs WHERE id = ANY($1::bigint[])`, [pairs.map((p) => p.second.id)]);
    expect(counters).toEqual([{ deps_pending: 0 }]);
  });
});
