import type { INestApplicationContext } from '@nestjs/common';
import { Handle, JobDependencyError, JobState, Processor, QueueService, type ActiveJob } from '../../lib';
import { JobLifecycle, type JobLifecycleEvent } from '../../lib/worker/job-lifecycle';
import { createTestApp } from './helpers/app';
import { dropSchema, sql, uniqueSchema } from './helpers/database';
import { waitForJobState } from './helpers/jobs';
import { waitFor } from './helpers/wait-for';

const schema = uniqueSchema('jadmin_flows');

@Processor('adm', { concurrency: 2, defaultJobOptions: { maxAttempts: 1 } })
class AdminFlowsProcessor {
  @Handle('logs')
  async logs(job: ActiveJob) {
    await job.log('one');
    await job.log('two');
    return 'logged';
  }

  @Handle('fails')
  fails() {
    throw new Error('child fails');
  }
}

/** The job management API next to flows and job logs: nothing left behind, nothing stranded. */
describe('job management with flows and logs', () => {
  let app: INestApplicationContext;
  let queue: QueueService;
  const count = async (table: string, where: string) => (await sql<{ n: number }>(`SELECT count(*)::int AS n FROM "${schema}".${table} WHERE ${where}`))[0].n;

  beforeAll(async () => {
    app = await createTestApp({ schema, providers: [AdminFlowsProcessor], queue: { worker: { pollIntervalMs: 50 } } });
    queue = app.get(QueueService);
  });
  afterAll(async () => {
    await app?.close();
    await dropSchema(schema);
  });

  it('deleteJob and deleteJobs take the job\'s log entries and dependency rows along', async () => {
    const a = await queue.add('adm', 'logs', {});
    const b = await queue.add('adm', 'logs', {});
    await waitForJobState(queue, a.id, 'completed');
    await waitForJobState(queue, b.id, 'completed');
    await waitFor('the logs to be written', async () => (await queue.getJobLogs(a.id)).length === 2 && (await queue.getJobLogs(b.id)).length === 2);
    await queue.deleteJob(a.id);
    expect(await count('queue_jobs_logs', `job_id = ${a.id}`)).toBe(0);
    expect(await queue.deleteJobs({ ids: [b.id] })).toBe(1);
    expect(await count('queue_jobs_logs', `job_id = ${b.id}`)).toBe(0);

    const done = await queue.add('adm', 'logs', {});
    await waitForJobState(queue, done.id, 'completed');
    const dependent = await queue.add('nobody-runs', 'later', {}, { dependsOn: [done.id] });
    await waitForJobState(queue, dependent.id, 'pending');
    expect(await count('queue_jobs_deps', `job_id = ${dependent.id}`)).toBe(1);
    await queue.deleteJob(dependent.id);
    expect(await count('queue_jobs_deps', `job_id = ${dependent.id} OR depends_on = ${done.id}`)).toBe(0);
  });

  it('refuses to delete a job that an unfinished job depends on, alone or in bulk', async () => {
    const parent = await queue.addFlow({ queue: 'nobody-runs', name: 'parent', data: {}, children: [{ queue: 'adm', name: 'logs', data: {} }] });
    const child = parent.children[0];
    await waitForJobState(queue, child.id, 'completed');
    const blocked = await queue.getJob(parent.id);
    expect(blocked?.state).toBe(JobState.Pending);
    // The parent is pending (released) but unfinished: its finished child is still needed.
    await expect(queue.deleteJob(child.id)).rejects.toBeInstanceOf(JobDependencyError);
    await expect(queue.deleteJob(child.id)).rejects.toThrow(/unfinished job depends on it/);
    expect(await queue.deleteJobs({ ids: [child.id] })).toBe(0);
    expect(await queue.getJob(child.id)).not.toBeNull();
    await queue.cancel(parent.id);
    expect(await queue.deleteJobs({ ids: [child.id] })).toBe(1);
  });

  it('cancel() of a flow\'s job tells a cancelled event for each unfinished descendant it cancelled', async () => {
    const told: JobLifecycleEvent[] = [];
    const unsubscribe = app.get(JobLifecycle).subscribe((event) => told.push(event));
    try {
      const parent = await queue.addFlow({
        queue: 'nobody-runs', name: 'parent', data: {},
        children: [{ queue: 'nobody-runs', name: 'a', data: {} }, { queue: 'nobody-runs', name: 'b', data: {}, children: [{ queue: 'nobody-runs', name: 'c', data: {} }] }],
      });
      await queue.cancel(parent.id);
      const cancelled = told.filter((e) => e.type === 'cancelled').map((e) => e.job.id).sort();
      const ids = [parent.id, parent.children[0].id, parent.children[1].id, ...parent.children[1].children.map((c) => c.id)].sort();
      expect(cancelled).toEqual(ids);
      for (const id of ids) expect((await queue.getJob(id))?.state).toBe(JobState.Cancelled);
    } finally {
      unsubscribe();
    }
  });

  it('bulk retry leaves a parent failed by its child alone (retrying the child re-blocks it)', async () => {
    const parent = await queue.addFlow({ queue: 'nobody-runs', name: 'parent', data: {}, children: [{ queue: 'adm', name: 'fails', data: {} }] });
    const child = parent.children[0];
    await waitForJobState(queue, child.id, 'failed');
    await waitForJobState(queue, parent.id, 'failed');
    expect(await queue.retryJobs({ ids: [parent.id] })).toBe(0);
    expect((await queue.getJob(parent.id))?.state).toBe(JobState.Failed);
    expect(await queue.retryJobs({ ids: [child.id] })).toBe(1);
    await waitFor('the parent to be blocked again', async () => (await queue.getJob(parent.id))?.state === JobState.Blocked);
  });
});
