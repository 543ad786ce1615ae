#!/usr/bin/env node
// Benchmark of the dashboard's pages (docs/dashboard.md) on a big table, over real HTTP:
//
//   npm run build && node bench/dashboard.mjs [--rows 1000000] [--reps 20]
//
// Fills one schema with --rows jobs in 20 queues (bench/big-table.mjs, as bench/admin.mjs), boots
// an Express app with QueueModule (worker: false) and QueueDashboardModule (cacheMs: 0, so every
// overview reads the registry and the rollups again: the worst case), and times each page --reps
// times after one warm-up (p50, p95 in ms, the whole request: query, rendering, HTTP): the
// overview, job lists (one queue; one queue's failed jobs; every job), a deep page (25,000 jobs
// into one queue, by cursor), search by id, data filters, a job's page and the failures page.
// The bulk retry while another queue drains is bench/admin.mjs's figure: the dashboard's "all
// matching" is that same retryJobs() call. stdout: one JSON line per figure; progress on stderr.
import { performance } from 'node:perf_hooks';
import path from 'node:path';
import { DATABASE_URL, ROOT, dropSchema, lib, newSchema, percentile, require, sql, table } from './common.mjs';
import { log } from './measure.mjs';
import { fillBigTable } from './big-table.mjs';
import { positiveIntegerArgs } from './cli-args.mjs';

const { rows: ROWS, reps: REPS } = positiveIntegerArgs({ rows: 1_000_000, reps: 20 });

const emit = (metric, value) => {
  process.stdout.write(`${JSON.stringify({ metric, unit: 'ms', value: Number(value.toFixed(1)) })}\n`);
  log(`${metric}: ${value.toFixed(1)} ms`);
};

async function bootApp(schema) {
  const { Module } = require('@nestjs/common');
  const { NestFactory } = require('@nestjs/core');
  const { TypeOrmModule } = require('@nestjs/typeorm');
  const { QueueDashboardModule } = require(path.join(ROOT, 'dist/lib/dashboard/index.js'));
  class DashboardBenchModule {}
  Module({
    imports: [
      TypeOrmModule.forRoot({ type: 'postgres', url: DATABASE_URL, synchronize: false, logging: false, poolSize: 10 }),
      lib.QueueModule.forRoot({ schema, worker: false }),
      QueueDashboardModule.forRoot({ path: 'queues', cacheMs: 0 }),
    ],
  })(DashboardBenchModule);
  const app = await NestFactory.create(DashboardBenchModule, { logger: ['error', 'warn'] });
  await app.listen(0, '127.0.0.1');
  return { app, base: `http://127.0.0.1:${app.getHttpServer().address().port}/queues` };
}

async function main() {
  const schema = newSchema('dashboard');
  let app;
  try {
    let base;
    ({ app, base } = await bootApp(schema));
    await fillBigTable(schema, ROWS);
    const queue = app.get(lib.QueueService);
    const [{ min, max }] = await sql(`SELECT min(id)::text AS min, max(id)::text AS max FROM ${table(schema)}`);
    const randomId = () => String(Number(min) + Math.floor(Math.random() * (Number(max) - Number(min))));
    // The registry learns the queues at its first count.
    await queue.getQueues();

    /** Times GET `target()` REPS times after one warm-up; every answer must be a 200. */
    const timed = async (metric, target) => {
      const get = async () => {
        const response = await fetch(`${base}${target()}`);
        await response.text();
        if (response.status !== 200) throw new Error(`${metric}: ${target()} answered ${response.status}`);
      };
      await get();
      const ms = [];
      for (let i = 0; i < REPS; i++) {
        const t0 = performance.now();
        await get();
        ms.push(performance.now() - t0);
      }
      ms.sort((a, b) => a - b);
      emit(`${metric}.p50`, percentile(ms, 50));
      emit(`${metric}.p95`, percentile(ms, 95));
    };

    let cursor;
    for (let i = 0; i < 25; i++) {
      const page = await queue.listJobs({ queue: 'q07', limit: 1000, after: cursor });
      if (!page.next) break;
      cursor = page.next;
    }
    await timed('page.overview', () => '');
    await timed('page.jobs.queue', () => '/jobs?queue=q07');
    await timed('page.jobs.queue_failed', () => '/jobs?queue=q07&state=failed');
    await timed('page.jobs.all', () => '/jobs');
    await timed('page.jobs.queue.deep', () => `/jobs?queue=q07&after=${encodeURIComponent(cursor ?? '')}`);
    await timed('page.jobs.search_id', () => `/jobs?q=${randomId()}`);
    await timed('page.jobs.data.queue', () => `/jobs?queue=q07&q=${encodeURIComponent('data.tenant:7')}`);
    await timed('page.jobs.data.all', () => `/jobs?q=${encodeURIComponent('data.user.plan:"pro" data.kind:"k3"')}`);
    await timed('page.job', () => `/jobs/${randomId()}`);
    await timed('page.failures', () => '/failures');
  } finally {
    await app?.close();
    await dropSchema(schema);
  }
}

main().catch((error) => {
  log(error?.stack ?? String(error));
  process.exit(1);
});
