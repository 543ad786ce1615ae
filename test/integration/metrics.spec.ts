import type { INestApplicationContext } from '@nestjs/common';
import { Client } from 'pg';
import { Registry, register as globalRegister } from 'prom-client';
import { Handle, InvalidModuleOptionsError, Processor, QueueService } from '../../lib';
import { QueueMetrics } from '../../lib/observability/prometheus/queue-metrics.service';
import { createTestApp, createTestDataSource } from './helpers/app';
import { dropSchema, uniqueSchema } from './helpers/database';
import { waitFor } from './helpers/wait-for';
import type { DataSource } from 'typeorm';

const schema = uniqueSchema('metrics');

@Processor('m-0')
class IdleProcessor {
  @Handle('x') x() {}
}

/** The Prometheus export: gauges from the registry's counts, scrapes from memory, bad options at boot. */
describe('Prometheus metrics (and the observability options)', () => {
  let app: INestApplicationContext;
  let queue: QueueService;
  const registry = new Registry();

  beforeAll(async () => {
    app = await createTestApp({ schema, queue: { worker: false, metrics: { registry, prefix: 'pgq' } } });
    queue = app.get(QueueService);
  });
  afterAll(async () => {
    await app?.close();
    await dropSchema(schema);
  });

  it('a scrape with 100 queues reads memory only (no query) and takes under 50 ms', async () => {
    const jobs = Array.from({ length: 100 }, (_, i) => Array.from({ length: 10 }, () => ({ queue: `q-${String(i).padStart(3, '0')}`, name: 'n', data: {} }))).flat();
    await queue.addBulk(jobs);
    const metrics = app.get(QueueMetrics);
    await waitFor('the gauges to list 100 queues', async () => {
      await metrics.refreshNow();
      const jobsGauge = (await registry.getMetricsAsJSON()).find((m) => m.name === 'pgq_jobs');
      return jobsGauge?.values.filter((v) => v.labels.state === 'pending' && v.value === 10).length === 100;
    });

    const query = jest.spyOn(Client.prototype, 'query');
    try {
      const started = performance.now();
      const text = await registry.metrics();
      const elapsed = performance.now() - started;
      expect(query).not.toHaveBeenCalled();
      expect(elapsed).toBeLessThan(50);
      expect(text).toContain('pgq_jobs{queue="q-042",state="pending"} 10');
      expect(text).toContain('# TYPE pgq_jobs_completed_total counter');
      expect(text).toContain('# TYPE pgq_job_wait_seconds histogram');
    } finally {
      query.mockRestore();
    }
  });

  it('the oldest pending gauge is the age of the oldest due job of the queue, whatever its priority', async () => {
    const now = Date.now();
    await queue.add('aged', 'n', {}, { runAt: new Date(now - 600_000), priority: -5 });
    await queue.add('aged', 'n', {}, { runAt: new Date(now - 60_000), priority: 10 });
    await queue.add('aged', 'n', {}, { runAt: new Date(now - 30_000) });
    // Not due yet: not counted as waiting.
    await queue.add('future', 'n', {}, { runAt: new Date(now + 600_000) });
    const metrics = app.get(QueueMetrics);
    const age = async (q: string) => {
      await metrics.refreshNow();
      return (await registry.getMetricsAsJSON()).find((m) => m.name === 'pgq_oldest_pending_job_age_seconds')?.values.find((v) => v.labels.queue === q)?.value;
    };
    const aged = await waitFor('the aged queue to be measured', () => age('aged'));
    expect(aged).toBeGreaterThanOrEqual(600);
    expect(aged).toBeLessThan(660);
    expect(await age('future')).toBe(0);
  });

  it('an app closing takes its metrics off the registry (a new app can register them again)', async () => {
    const own = new Registry();
    const first = await createTestApp({ schema, queue: { worker: false, metrics: { registry: own } } });
    expect((await own.getMetricsAsJSON()).map((m) => m.name)).toContain('nestjs_pg_queue_jobs_completed_total');
    await first.close();
    expect(await own.getMetricsAsJSON()).toEqual([]);
  });

  it('uses prom-client\'s global registry by default', async () => {
    const other = await createTestApp({ schema, providers: [IdleProcessor], queue: { worker: { pollIntervalMs: 50 }, metrics: { prefix: 'pgq_global' } } });
    try {
      expect(await globalRegister.getSingleMetricAsString('pgq_global_jobs_failed_total')).toContain('# TYPE pgq_global_jobs_failed_total counter');
    } finally {
      await other.close();
    }
    expect(globalRegister.getSingleMetric('pgq_global_jobs_failed_total')).toBeUndefined();
  });

  describe('bad options fail the boot with InvalidModuleOptionsError', () => {
    let dataSource: DataSource;
    beforeAll(async () => {
      dataSource = await createTestDataSource();
    });
    afterAll(async () => {
      await dataSource?.destroy();
    });

    it.each([
      ['a prefix with a dash', { metrics: { prefix: 'my-queue' } }, 'metrics.prefix'],
      ['a prefix starting with a digit', { metrics: { prefix: '9lives' } }, 'metrics.prefix'],
      ['a registry that is not one', { metrics: { registry: { metrics: 'no' } } }, 'metrics.registry'],
      ['a registry that is a string', { metrics: { registry: 'default' } }, 'metrics.registry'],
      ['metrics that are not an object', { metrics: true }, 'metrics'],
      ['a misspelt metrics option', { metrics: { prefixe: 'x' } }, 'metrics.prefixe'],
      ['a refresh interval under a second', { metrics: { refreshIntervalMs: 10 } }, 'metrics.refreshIntervalMs'],
      ['a stats retention that is not a number', { stats: { retentionMs: '14d' } }, 'stats.retentionMs'],
      ['a negative stats flush interval', { stats: { flushIntervalMs: -1 } }, 'stats.flushIntervalMs'],
      ['stats that are true', { stats: true }, 'stats'],
      ['a zero maxPendingAgeMs', { health: { maxPendingAgeMs: 0 } }, 'health.maxPendingAgeMs'],
      ['a negative maxPendingAgeMs', { health: { maxPendingAgeMs: -1 } }, 'health.maxPendingAgeMs'],
      ['a maxPendingAgeMs that is a string', { health: { maxPendingAgeMs: '5m' } }, 'health.maxPendingAgeMs'],
      ['a maxPendingAgeMs that is NaN', { health: { maxPendingAgeMs: Number.NaN } }, 'health.maxPendingAgeMs'],
      ['a per-queue maxPendingAgeMs that is not positive', { health: { maxPendingAgeMs: { mail: 0 } } }, 'health.maxPendingAgeMs.mail'],
      ['a per-queue maxPendingAgeMs with a bad queue name', { health: { maxPendingAgeMs: { ' mail': 1000 } } }, 'health.maxPendingAgeMs'],
      ['a health timeout of 0', { health: { timeoutMs: 0 } }, 'health.timeoutMs'],
      ['tracing that is not a boolean', { tracing: 'on' }, 'tracing'],
    ])('%s', async (_what, options, option) => {
      const error = await createTestApp({ schema, dataSource, queue: options as never }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(InvalidModuleOptionsError);
      expect((error as InvalidModuleOptionsError).option).toBe(option);
    });

    it('a prefix another app already uses on the same registry', async () => {
      const error = await createTestApp({ schema, dataSource, queue: { worker: false, metrics: { registry, prefix: 'pgq' } } }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(InvalidModuleOptionsError);
      expect((error as InvalidModuleOptionsError).option).toBe('metrics.prefix');
      // The running app's metrics are untouched.
      expect(registry.getSingleMetric('pgq_jobs')).toBeDefined();
    });
  });

});
