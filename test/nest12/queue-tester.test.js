// vitest in an ESM Nest 12 app ("type": "module", what Nest 12's `nest new` generates): the packed
// library's `nestjs-pg-queue/testing` subpath, imported with ESM `import`, drives the app's jobs.
// Run by test/integration/nest12-smoke.spec.ts (`vitest run` in the installed temp copy).
import 'reflect-metadata';
import { NestFactory } from '@nestjs/core';
import { QueueService } from 'nestjs-pg-queue';
import { createQueueTester, JobExpectationError } from 'nestjs-pg-queue/testing';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createAppModule } from './app.module.js';

const databaseUrl = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const schema = process.env.SMOKE_SCHEMA ?? 'nest12_vitest';

describe.each([
  ['worker: false', false],
  ['a running worker', { pollIntervalMs: 100, shutdownTimeoutMs: 500 }],
])('nestjs-pg-queue/testing under vitest, %s', (_label, worker) => {
  let app;
  let tester;

  beforeAll(async () => {
    app = await NestFactory.createApplicationContext(createAppModule({ databaseUrl, schema, worker }), { logger: ['error'] });
    tester = createQueueTester(app);
  });
  afterEach(() => tester.clear());
  afterAll(() => app?.close());

  it('expectEnqueued, drain and run with the real handler', async () => {
    await app.get(QueueService).add('smoke', 'ping', { n: 4 });
    const [job] = await tester.expectEnqueued({ queue: 'smoke', name: 'ping', data: { n: 4 } });
    expect(job.queue).toBe('smoke');
    await expect(tester.expectEnqueued({ queue: 'smoke', data: { n: 5 } })).rejects.toBeInstanceOf(JobExpectationError);

    const summary = await tester.drain('smoke');
    expect(summary.failed).toBe(0);
    expect(await tester.enqueued({ queue: 'smoke', state: 'completed' })).toHaveLength(1);
    expect(await tester.run('smoke', 'ping', { n: 21 })).toEqual({ pong: true, doubled: 42, attempt: 1 });
  });
});
