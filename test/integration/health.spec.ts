import { Controller, Get, Module, type INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { TypeOrmModule } from '@nestjs/typeorm';
import { HealthCheck, HealthCheckService, TerminusModule } from '@nestjs/terminus';
import type { AddressInfo } from 'node:net';
import request from 'supertest';
import { Handle, Processor, QueueModule, type QueueModuleOptions } from '../../lib';
import { QueueHealthIndicator } from '../../lib/terminus';
import { QueueWorker } from '../../lib/worker/worker.service';
import { DATABASE_URL, uniqueSchema } from './helpers/database';
import { useProxiedDatabase } from './helpers/proxied-database';
import { TcpProxy } from './helpers/tcp-proxy';
import { waitFor } from './helpers/wait-for';

const schema = uniqueSchema('health');
const TIMEOUT_MS = 500;

@Processor('watched')
class WatchedProcessor {
  @Handle('x') x() {}
}

@Controller()
class HealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly queue: QueueHealthIndicator,
  ) {}

  @Get('health')
  @HealthCheck()
  check() {
    return this.health.check([() => this.queue.isHealthy('queue')]);
  }
}

/** An HTTP app with terminus whose database connections all go through `proxy`. */
async function createHealthApp(proxy: TcpProxy, queue: Omit<QueueModuleOptions, 'schema'>): Promise<INestApplication> {
  @Module({
    imports: [
      TypeOrmModule.forRoot({ type: 'postgres', url: TcpProxy.urlThrough(DATABASE_URL, proxy.port), poolSize: 4, connectTimeoutMS: 1000, retryAttempts: 0 }),
      QueueModule.forRoot({ schema, ...queue }),
      TerminusModule.forRoot({ logger: false }),
    ],
    controllers: [HealthController],
    providers: [WatchedProcessor, QueueHealthIndicator],
  })
  class HealthAppModule {}
  const app = await NestFactory.create(HealthAppModule, { logger: process.env.TEST_LOGS ? undefined : false, abortOnError: false });
  await app.listen(0, '127.0.0.1');
  return app;
}

describe('QueueHealthIndicator (@nestjs/terminus)', () => {
  const env = useProxiedDatabase(schema);
  const { proxy } = env;
  let app: INestApplication | undefined;
  const get = () => request(`http://127.0.0.1:${(app!.getHttpServer().address() as AddressInfo).port}`).get('/health');

  afterEach(async () => {
    proxy.unfreeze();
    await proxy.restore();
    await app?.close();
    app = undefined;
  });

  it('up; down when the database is cut, answering within the timeout; up again once it is back', async () => {
    app = await createHealthApp(proxy, { worker: { pollIntervalMs: 100, lockDurationMs: 3000 }, health: { timeoutMs: TIMEOUT_MS } });
    const up = await get();
    expect(up.status).toBe(200);
    expect(up.body.info.queue).toMatchObject({ status: 'up', database: { up: true }, worker: { enabled: true, running: true, listening: true } });

    await proxy.cut();
    const down = await waitFor('the check to see the LISTEN connection lost', async () => {
      const res = await get();
      return res.body.error?.queue?.worker?.listening === false ? res : null;
    });
    expect(down.status).toBe(503);
    expect(down.body.error.queue).toMatchObject({ status: 'down', database: { up: false } });

    // A silent network (no reset, no answer): still answered within about the timeout.
    await proxy.restore();
    await waitFor('the check to be up again', async () => (await get()).status === 200, 20_000);
    proxy.freeze();
    const started = Date.now();
    const frozen = await get();
    expect(frozen.status).toBe(503);
    expect(frozen.body.error.queue.database).toMatchObject({ up: false, error: `the database did not answer within ${TIMEOUT_MS} ms` });
    expect(Date.now() - started).toBeLessThan(TIMEOUT_MS + 1000);
    proxy.unfreeze();
    await waitFor('the check to be up after the freeze', async () => (await get()).status === 200, 20_000);
  }, 60_000);

  it('down once the worker was stopped', async () => {
    app = await createHealthApp(proxy, { worker: { pollIntervalMs: 100 } });
    expect((await get()).status).toBe(200);
    await app.get(QueueWorker).stop();
    const res = await get();
    expect(res.status).toBe(503);
    expect(res.body.error.queue).toMatchObject({ database: { up: true }, worker: { enabled: true, running: false } });
  });

  it('a producer-only process (worker: false) is up with the database alone', async () => {
    app = await createHealthApp(proxy, { worker: false });
    const res = await get();
    expect(res.status).toBe(200);
    expect(res.body.info.queue.worker).toEqual({ enabled: false, running: false, listening: null });
  });

  it('maxPendingAgeMs: down when a bounded queue\'s oldest due job waited too long, naming it', async () => {
    await env.queue.add('stale', 'n', {}, { runAt: new Date(Date.now() - 120_000) });
    await env.queue.add('fresh', 'n', {}, {});
    app = await createHealthApp(proxy, { worker: { pollIntervalMs: 100 }, health: { maxPendingAgeMs: { stale: 60_000, fresh: 60_000 } } });
    const res = await get();
    expect(res.status).toBe(503);
    const { queues } = res.body.error.queue;
    expect(queues.stale).toMatchObject({ up: false, maxPendingAgeMs: 60_000 });
    expect(queues.stale.oldestPendingAgeMs).toBeGreaterThanOrEqual(120_000);
    expect(queues.fresh).toMatchObject({ up: true });
    expect(queues.fresh.oldestPendingAgeMs).toBeLessThan(60_000);
  });

  it('maxPendingAgeMs as one bound checks every queue', async () => {
    await env.queue.add('stale', 'n', {}, { runAt: new Date(Date.now() - 120_000) });
    // NOTE: a queue gets its registry row from a processor somewhere, or from a recount of the job table.
    await env.queue.getQueues();
    app = await createHealthApp(proxy, { worker: { pollIntervalMs: 100 }, health: { maxPendingAgeMs: 3_600_000 } });
    const res = await get();
    expect(res.status).toBe(200);
    expect(res.body.info.queue.queues.stale).toMatchObject({ up: true, maxPendingAgeMs: 3_600_000 });
  });
});
