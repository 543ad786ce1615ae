#!/usr/bin/env node
// Benchmark of the job management API (docs/job-admin.md) on a big table:
//
//   npm run build && node bench/admin.mjs [--rows 1000000] [--reps 20] [--drain-jobs 20000]
//                                         [--concurrency 100] [--explain]
//
// Fills one schema with --rows jobs in 20 queues (q00..q19) by SQL, in mixed states: 10 % failed
// (exactly rows/10: the bulk retry's 100,000 at the default size), 5 % cancelled, 10 % pending
// (half of them delayed), 0.1 % active, the rest completed; then times, --reps times each (p50,
// p95 in ms): listJobs first pages (one queue and state; one queue; everything; lastFinished;
// nextToRun), a deep page (25,000 jobs into one queue, reached by cursor), search by id and by
// error text, data filters, getJob. Last, the drain of another queue (--drain-jobs no-op jobs,
// a child worker process, as bench/run.mjs's drain) alone, while retryJobs({ state: 'failed' })
// revives every failed job (batches of 1,000), and alone again: the ratio is the drain's speed
// during the retry against the mean of the two alone.
// stdout: one JSON line per figure; progress on stderr. --explain prints the plans of the listings.
import { performance } from 'node:perf_hooks';
import path from 'node:path';
import { QUEUE, ROOT, createBenchApp, dropSchema, enqueueBulk, newSchema, percentile, require, sql, table } from './common.mjs';
import { cleanup, log, startChild } from './measure.mjs';
import { fillBigTable } from './big-table.mjs';
import { positiveIntegerArgs } from './cli-args.mjs';

const { rows: ROWS, reps: REPS, 'drain-jobs': DRAIN_JOBS, concurrency: CONCURRENCY } = positiveIntegerArgs({ rows: 1_000_000, reps: 20, 'drain-jobs': 20_000, concurrency: 100 });
const EXPLAIN = process.argv.slice(2).includes('--explain');

const emit = (metric, unit, value, extra = {}) => {
  const digits = unit === 'ratio' ? 3 : 1;
  process.stdout.write(`${JSON.stringify({ metric, unit, value: Number(value.toFixed(digits)), ...extra })}\n`);
  log(`${metric}: ${value.toFixed(digits)} ${unit}`);
};

/** Times `work` REPS times (after one warm-up run); emits p50 and p95. */
async function timed(metric, work) {
  await work();
  const ms = [];
  for (let i = 0; i < REPS; i++) {
    const t0 = performance.now();
    await work(i);
    ms.push(performance.now() - t0);
  }
  ms.sort((a, b) => a - b);
  emit(`${metric}.p50`, 'ms', percentile(ms, 50));
  emit(`${metric}.p95`, 'ms', percentile(ms, 95));
}

async function fill(schema) {
  await fillBigTable(schema, ROWS);
}

async function explain(schema) {
  const { buildListStatement } = require(path.join(ROOT, 'dist/lib/database/sql/job-search.statements.js'));
  const { createTableNaming } = require(path.join(ROOT, 'dist/lib/database/table-naming.js'));
  const { buildJobStatements } = require(path.join(ROOT, 'dist/lib/database/sql/job.statements.js'));
  const n = createTableNaming(schema, 'queue_jobs');
  const base = buildJobStatements(n);
  const q = (extra) => ({ queue: null, states: null, name: null, id: null, errorPattern: null, data: null, ...extra });
  const cases = [
    ['queue+failed', q({ queue: 'q07', states: ['failed'] }), 'newest', null],
    ['queue', q({ queue: 'q07' }), 'newest', null],
    ['queue+pending nextToRun', q({ queue: 'q07', states: ['pending'] }), 'nextToRun', null],
    ['lastFinished', q({ states: ['completed', 'failed', 'cancelled'] }), 'lastFinished', null],
    ['data tenant', q({ data: '{"tenant":42}' }), 'newest', null],
    ['failed error text', q({ states: ['failed'], errorPattern: '%request 4242%' }), 'newest', null],
    ['active', q({ states: ['active'] }), 'newest', null],
    ['queue+completed', q({ queue: 'q07', states: ['completed'] }), 'newest', null],
    ['name', q({ name: 'resize' }), 'newest', null],
  ];
  for (const [label, query, sort, cursor] of cases) {
    const { text, values } = buildListStatement(n, base, query, sort, cursor, 50, 20_000);
    const plan = await sql(`EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) ${text}`, values);
    log(`EXPLAIN ${label}:\n${plan.map((r) => r['QUERY PLAN']).join('\n')}`);
  }
}

async function drainOnce(schema, label) {
  const { app, queue } = await createBenchApp({ schema, worker: false });
  try {
    await enqueueBulk(queue, DRAIN_JOBS);
  } finally {
    await app.close();
  }
  const worker = startChild({ mode: 'drain', schema, jobs: DRAIN_JOBS, concurrency: CONCURRENCY, confirmQueue: QUEUE });
  return { label, worker };
}

async function main() {
  const schema = newSchema('admin');
  try {
    // Boots once to create the table (the library's own migration).
    const { app, queue } = await createBenchApp({ schema, worker: false });
    try {
      await fill(schema);
      if (EXPLAIN) await explain(schema);
      const [{ min, max }] = await sql(`SELECT min(id)::text AS min, max(id)::text AS max FROM ${table(schema)}`);
      const randomId = () => String(Number(min) + Math.floor(Math.random() * (Number(max) - Number(min))));

      await timed('list.queue_state.first', () => queue.listJobs({ queue: 'q07', state: 'failed' }));
      await timed('list.queue.first', () => queue.listJobs({ queue: 'q07' }));
      await timed('list.all.first', () => queue.listJobs({}));
      await timed('list.completed.first', () => queue.listJobs({ state: 'completed' }));
      await timed('list.lastFinished.first', () => queue.listJobs({ sort: 'lastFinished' }));
      await timed('list.nextToRun.first', () => queue.listJobs({ queue: 'q07', state: 'pending', sort: 'nextToRun' }));
      // Deep pages: 25,000 jobs into queue q07 (of 50,000), and 5,000 into its failed jobs.
      // Deep pages, reached by cursor: 25,000 jobs into queue q07 (of 50,000), 5,000 into its failed
      // jobs, 100,000 into every finished job (or as deep as the table goes).
      const deepCursor = async (options, pages) => {
        let cursor;
        for (let i = 0; i < pages; i++) {
          const page = await queue.listJobs({ ...options, limit: 1000, after: cursor });
          if (!page.next) break;
          cursor = page.next;
        }
        return cursor;
      };
      const deep = await deepCursor({ queue: 'q07' }, 25);
      await timed('list.queue.deep', () => queue.listJobs({ queue: 'q07', after: deep }));
      const deepFailed = await deepCursor({ queue: 'q07', state: 'failed', sort: 'oldest' }, 5);
      await timed('list.queue_state.deep', () => queue.listJobs({ queue: 'q07', state: 'failed', sort: 'oldest', after: deepFailed }));
      const deepFinished = await deepCursor({ sort: 'lastFinished' }, 100);
      await timed('list.lastFinished.deep', () => queue.listJobs({ sort: 'lastFinished', after: deepFinished }));
      const deepNext = await deepCursor({ queue: 'q07', state: 'pending', sort: 'nextToRun' }, 3);
      await timed('list.nextToRun.deep', () => queue.listJobs({ queue: 'q07', state: 'pending', sort: 'nextToRun', after: deepNext }));
      await timed('search.id', () => queue.listJobs({ search: randomId() }));
      await timed('search.error_text.queue', () => queue.listJobs({ queue: 'q07', search: 'returned 502' }));
      await timed('search.error_text.failed', () => queue.listJobs({ state: 'failed', search: 'request 4242' }));
      await timed('data.queue', () => queue.listJobs({ queue: 'q07', data: { tenant: 7 } }));
      await timed('data.all', () => queue.listJobs({ data: { user: { plan: 'pro' }, kind: 'k3' } }));
      await timed("data.rare", (i = 0) => queue.listJobs({ data: { tenant: 100 + i } }));
      await timed('getJob', () => queue.getJob(randomId()));

      // The drain of another queue alone, during a bulk retry of every failed job, and alone again.
      const alone1 = await drainOnce(schema, 'alone');
      const r1 = await alone1.worker.next('result');
      await alone1.worker.exited;
      const during = await drainOnce(schema, 'during');
      // NOTE: the retry starts when the child's worker is booting; the child's clock starts with its worker.
      const retryStart = performance.now();
      const progress = [];
      const retrying = queue.retryJobs({ state: 'failed' }, { onProgress: (p) => progress.push([performance.now() - retryStart, p.affected]) });
      const r2 = await during.worker.next('result');
      await during.worker.exited;
      const retried = await retrying;
      const retryMs = performance.now() - retryStart;
      const alone2 = await drainOnce(schema, 'alone');
      const r3 = await alone2.worker.next('result');
      await alone2.worker.exited;
      emit('bulk.retry.jobs', 'jobs', retried);
      emit('bulk.retry.ms', 'ms', retryMs, { batches: progress.length, jobsPerSec: Math.round((retried / retryMs) * 1000) });
      emit('drain.alone.jobsPerSec', 'jobs/s', (r1.jobsPerSec + r3.jobsPerSec) / 2, { runs: [Math.round(r1.jobsPerSec), Math.round(r3.jobsPerSec)] });
      emit('drain.duringRetry.jobsPerSec', 'jobs/s', r2.jobsPerSec, { drainMs: Math.round(r2.ms), retryStillRunningAtDrainEnd: retryMs > r2.ms });
      emit('drain.duringRetry.ratio', 'ratio', r2.jobsPerSec / ((r1.jobsPerSec + r3.jobsPerSec) / 2));
    } finally {
      await app.close();
    }
  } finally {
    await dropSchema(schema);
  }
}

for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => cleanup().finally(() => process.exit(130)));
main().catch(async (error) => {
  log(error?.stack ?? String(error));
  await cleanup();
  process.exit(1);
});

