import type { INestApplicationContext } from '@nestjs/common';
import { Registry } from 'prom-client';
import { Handle, Processor, QueueService, type ActiveJob } from '../../../lib';
import { QueueMetrics } from '../../../lib/observability/prometheus/queue-metrics.service';
import { createTestApp } from '../helpers/app';
import { sql } from '../helpers/database';
import { waitFor } from '../helpers/wait-for';
import { countStates, useChaosEnvironment } from './fixtures/chaos-db';

/**
 * After a drain of known outcomes (completed, completed after a retry, failed after retries, one
 * rescued after its worker was SIGKILLed), the Prometheus counters, the histograms' counts and the
 * per-minute rollups all match the jobs' own records exactly.
 */
const env = useChaosEnvironment('obs_drain');
const { schema, workers } = env;
const Q = 'drain';
const DOOMED = 'doomed';

@Processor(Q, { concurrency: 4, defaultJobOptions: { backoff: { type: 'fixed', delayMs: 10 } } })
class DrainProcessor {
  @Handle('ok')
  ok() {
    return null;
  }

  @Handle('flaky')
  flaky() {
    throw new Error('always fails');
  }

  @Handle('once')
  once(job: ActiveJob) {
    if (job.attempts === 1) throw new Error('fails its first attempt');
    return 'second time lucky';
  }
}

interface JobRecord {
  queue: string;
  name: string;
  state: string;
  attempts: number;
  rescued: boolean;
}

describe('observability: a drain of known outcomes', () => {
  let app: INestApplicationContext;
  const registry = new Registry();

  beforeAll(async () => {
    app = await createTestApp({
      schema,
      providers: [DrainProcessor],
      queue: {
        worker: { pollIntervalMs: 50, lockDurationMs: 1000 },
        stats: { flushIntervalMs: 200 },
        metrics: { registry, prefix: 'pgq_test' },
      },
    });
  });
  afterAll(async () => {
    await workers.killAll();
    await app?.close();
  });

  it('counters, histogram counts and rollups equal what the jobs record', async () => {
    const queue = app.get(QueueService);
    // The doomed job kills its worker (a child process running only that queue) on every attempt;
    // the in-process worker's rescuer, which rescues every queue, fails it (no attempt left).
    const victim = await workers.start({ queue: DOOMED, maxAttempts: 1, worker: { lockDurationMs: 1000, pollIntervalMs: 50 } });
    const doomed = await env.queue.add(DOOMED, 'suicide', {});
    await queue.addBulk([
      ...Array.from({ length: 20 }, () => ({ queue: Q, name: 'ok', data: {} })),
      ...Array.from({ length: 5 }, () => ({ queue: Q, name: 'flaky', data: {}, options: { maxAttempts: 2 } })),
      ...Array.from({ length: 5 }, () => ({ queue: Q, name: 'once', data: {}, options: { maxAttempts: 3 } })),
    ]);
    expect(await victim.exited).toMatchObject({ signal: 'SIGKILL' });
    await waitFor('the drain to finish', async () => {
      const states = await countStates(schema, Q);
      return states.completed === 25 && states.failed === 5;
    });
    await waitFor('the doomed job to be rescued and failed', async () => (await queue.getJob(doomed.id))?.state === 'failed');

    const records = await sql<JobRecord>(
      `SELECT queue, name, state, attempts, (last_error->>'name') = 'JobLeaseExpiredError' AS rescued FROM "${schema}".queue_jobs`,
    );
    // Per queue and name, what the jobs themselves say.
    const expected = new Map<string, { completed: number; failed: number; retried: number; rescued: number; started: number }>();
    for (const r of records) {
      const key = `${r.queue}/${r.name}`;
      const e = expected.get(key) ?? { completed: 0, failed: 0, retried: 0, rescued: 0, started: 0 };
      if (r.state === 'completed') e.completed++;
      if (r.state === 'failed') e.failed++;
      if (r.rescued) e.rescued++;
      // Attempts that ended here with a written outcome: every attempt but a rescued one.
      const ended = r.attempts - (r.rescued ? 1 : 0);
      e.retried += ended - (r.state === 'completed' || (r.state === 'failed' && !r.rescued) ? 1 : 0);
      e.started += ended;
      expected.set(key, e);
    }
    expect(expected.get(`${Q}/ok`)).toEqual({ completed: 20, failed: 0, retried: 0, rescued: 0, started: 20 });
    expect(expected.get(`${Q}/flaky`)).toEqual({ completed: 0, failed: 5, retried: 5, rescued: 0, started: 10 });
    expect(expected.get(`${Q}/once`)).toEqual({ completed: 5, failed: 0, retried: 5, rescued: 0, started: 10 });
    expect(expected.get(`${DOOMED}/suicide`)).toEqual({ completed: 0, failed: 1, retried: 0, rescued: 1, started: 0 });

    // Rollups (every process's, summed over the minutes the drain spanned).
    const totals = async () => {
      const rows = await queue.getStats({ since: new Date(Date.now() - 3_600_000) });
      const sums = new Map<string, { completed: number; failed: number; retried: number; rescued: number; started: number; ran: number; buckets: number }>();
      for (const row of rows) {
        const key = `${row.queue}/${row.name}`;
        const s = sums.get(key) ?? { completed: 0, failed: 0, retried: 0, rescued: 0, started: 0, ran: 0, buckets: 0 };
        s.completed += row.completed;
        s.failed += row.failed;
        s.retried += row.retried;
        s.rescued += row.rescued;
        s.started += row.waitTime.count;
        s.ran += row.runTime.count;
        s.buckets += row.waitTime.buckets.reduce((a, b) => a + b, 0);
        sums.set(key, s);
      }
      return sums;
    };
    await waitFor('the rollups to be written', async () => {
      const sums = await totals();
      return [...expected].every(([key, e]) => {
        const s = sums.get(key);
        return s && s.completed === e.completed && s.failed === e.failed && s.retried === e.retried && s.rescued === e.rescued && s.started === e.started;
      });
    });
    for (const [key, s] of await totals()) {
      const e = expected.get(key)!;
      expect({ key, ...s }).toEqual({ key, completed: e.completed, failed: e.failed, retried: e.retried, rescued: e.rescued, started: e.started, ran: e.started, buckets: e.started });
    }
    const [row] = await queue.getStats({ queue: Q });
    expect(row.waitTime.p50Ms).not.toBeNull();
    expect(row.waitTime.p95Ms!).toBeGreaterThanOrEqual(row.waitTime.p50Ms!);

    // Prometheus: this process ran every attempt of queue drain and rescued the doomed job.
    const metrics = await registry.getMetricsAsJSON();
    const value = (name: string, labels: Record<string, string>, suffix?: string) => {
      const metric = metrics.find((m) => m.name === name);
      const sample = (metric?.values as { value: number; labels: Record<string, string | number>; metricName?: string }[] | undefined)?.find(
        (v) => (suffix === undefined || v.metricName === `${name}${suffix}`) && Object.entries(labels).every(([k, l]) => v.labels[k] === l),
      );
      return sample?.value ?? 0;
    };
    for (const [key, e] of expected) {
      const [q, name] = key.split('/');
      const labels = { queue: q, name };
      expect({ key, completed: value('pgq_test_jobs_completed_total', labels), failed: value('pgq_test_jobs_failed_total', labels), retried: value('pgq_test_jobs_retried_total', labels), rescued: value('pgq_test_jobs_rescued_total', labels) }).toEqual({
        key,
        completed: e.completed,
        failed: e.failed,
        retried: e.retried,
        rescued: e.rescued,
      });
      expect(value('pgq_test_job_wait_seconds', labels, '_count')).toBe(e.started);
      expect(value('pgq_test_job_run_seconds', labels, '_count')).toBe(e.started);
    }

    // Gauges: refreshed from the registry's counts (recounted at most every 2 s).
    const metricsService = app.get(QueueMetrics);
    await waitFor('the job gauges to show the drain', async () => {
      await metricsService.refreshNow();
      const json = await registry.getMetricsAsJSON();
      const jobs = json.find((m) => m.name === 'pgq_test_jobs')?.values ?? [];
      const of = (state: string) => jobs.find((v) => v.labels.queue === Q && v.labels.state === state)?.value;
      return of('completed') === 25 && of('failed') === 5 && of('pending') === 0;
    });
  }, 60_000);
});
