// Shared helpers of the benchmark: loading the compiled library, building Nest apps in plain
// JavaScript, schema housekeeping, clocks and statistics. Used by run.mjs and worker-child.mjs.
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';

export const BENCH_DIR = path.dirname(fileURLToPath(import.meta.url));
export const ROOT = path.resolve(BENCH_DIR, '..');
export const require = createRequire(path.join(ROOT, 'package.json'));
export const DATABASE_URL = process.env.DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/test';
export const QUEUE = 'bench';
/** The queue that drains while pickup latency is measured on QUEUE (the `latency_busy` figures). */
export const BUSY_QUEUE = 'bench_busy';

require('reflect-metadata');
export const pg = require('pg');
const { Module } = require('@nestjs/common');
const { NestFactory } = require('@nestjs/core');
const { TypeOrmModule } = require('@nestjs/typeorm');
// The compiled library (npm run build), exactly as a user would get it.
export const lib = require(path.join(ROOT, 'dist/lib/index.js'));
export const { QueueWorker } = require(path.join(ROOT, 'dist/lib/worker/worker.service.js'));

/** Wall-clock time in ms with sub-ms resolution, comparable between processes on one machine. */
export const now = () => performance.timeOrigin + performance.now();

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** A schema name no other run uses. */
export function newSchema(tag) {
  return `pgq_bench_${tag}_${randomBytes(4).toString('hex')}`;
}

export async function sql(text, values = [], url = DATABASE_URL) {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query(text, values)).rows;
  } finally {
    await client.end();
  }
}

export function dropSchema(schema) {
  return sql(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
}

/** `"schema"."queue_jobs"`: the table QueueModule.forRoot({ schema }) creates. */
export const table = (schema) => `"${schema}"."queue_jobs"`;

/**
 * Waits (polling every `pollMs`) until every job of `schema`'s table is completed; resolves with
 * the number of polls. Each poll probes the partial indexes of pending and active jobs (two index
 * probes), so the wait does not load the server whose drain it times; once neither holds a job,
 * one count of every job not completed confirms it, as the raw reference confirms its own drain.
 * A scan of the table per poll (every 5 ms for a whole limited drain) had taken about half a core.
 */
export async function waitDrained(client, schema, pollMs) {
  const T = table(schema);
  for (let polls = 1; ; polls++) {
    const { rows: [probe] } = await client.query(`SELECT EXISTS (SELECT 1 FROM ${T} WHERE state = 'pending') OR EXISTS (SELECT 1 FROM ${T} WHERE state = 'active') AS busy`);
    if (!probe.busy) {
      const { rows } = await client.query(`SELECT count(*)::int AS n FROM ${T} WHERE state <> 'completed'`);
      if (rows[0].n === 0) return polls;
    }
    await sleep(pollMs);
  }
}

/**
 * Boots a Nest application context with TypeORM and QueueModule in `schema`. With `processor`, a
 * provider `@Processor(QUEUE, { concurrency })` whose `@Handle('noop')` calls `processor.handler`;
 * with `busy` too, a second one on BUSY_QUEUE (`{ concurrency, handler }`).
 * Decorators are applied as functions, since this is plain JavaScript.
 */
export async function createBenchApp({ schema, worker = false, processor, busy, poolSize = 10, providers: extra = [], url = DATABASE_URL, queueOptions = {} }) {
  const { QueueModule, Processor, Handle } = lib;
  const providers = [...extra];
  const addProcessor = (queue, { concurrency, handler }) => {
    class BenchProcessor {
      noop(job) {
        return handler(job);
      }
    }
    Processor(queue, { concurrency })(BenchProcessor);
    Handle('noop')(BenchProcessor.prototype, 'noop', Object.getOwnPropertyDescriptor(BenchProcessor.prototype, 'noop'));
    providers.push(BenchProcessor);
  };
  if (processor) addProcessor(QUEUE, processor);
  if (busy) addProcessor(BUSY_QUEUE, busy);
  class BenchAppModule {}
  Module({
    imports: [
      TypeOrmModule.forRoot({ type: 'postgres', url, synchronize: false, logging: false, poolSize }),
      QueueModule.forRoot({ schema, worker, ...queueOptions }),
    ],
    providers,
  })(BenchAppModule);
  const app = await NestFactory.createApplicationContext(BenchAppModule, { logger: ['error', 'warn'] });
  return { app, queue: app.get(lib.QueueService) };
}

/** Enqueues `count` no-op jobs with addBulk in chunks of 1000; data is `{ i }`. */
export async function enqueueBulk(queue, count, from = 0, options) {
  for (let i = 0; i < count; i += 1000) {
    const n = Math.min(1000, count - i);
    await queue.addBulk(
      Array.from({ length: n }, (_, k) => ({ queue: QUEUE, name: 'noop', data: { i: from + i + k }, ...(options ? { options: options(from + i + k) } : {}) })),
    );
  }
}

/** Same percentile rule as the raw reference. */
export function percentile(sorted, p) {
  return sorted[Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length))) - 1];
}

/** Median, min and max, rounded like the raw reference. */
export function summarize(values) {
  const s = [...values].sort((a, b) => a - b);
  const med = s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
  const r = (x) => Math.round(x * 10) / 10;
  return { median: r(med), min: r(s[0]), max: r(s[s.length - 1]), reps: s.length };
}

/** Latencies (ms) from two arrays of timestamps indexed by job. */
export function latencies(sent, seen) {
  const lat = Array.from(seen, (t, i) => t - sent[i]).sort((a, b) => a - b);
  if (lat.some(Number.isNaN)) throw new Error('latency: some jobs were never seen');
  return { p50: percentile(lat, 50), p95: percentile(lat, 95), p99: percentile(lat, 99) };
}

/**
 * A provider with a global `completed` listener that counts what it hears (the events bench group):
 * its process's presence makes every worker send its completions by NOTIFY.
 */
export function globalCompletionCounter() {
  class GlobalCompletionCounter {
    static heard = 0;
    on() {
      GlobalCompletionCounter.heard++;
    }
  }
  lib.OnQueueEvent('completed', { scope: 'global' })(GlobalCompletionCounter.prototype, 'on', Object.getOwnPropertyDescriptor(GlobalCompletionCounter.prototype, 'on'));
  return GlobalCompletionCounter;
}

const TICKS_PER_SECOND = 100;

/** CPU ms used so far by every PostgreSQL process on this machine. */
export function postgresCpuMs() {
  let ticks = 0;
  for (const pid of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    let stat;
    try {
      stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    } catch {
      continue; // exited meanwhile
    }
    if (!stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')')).startsWith('postgres')) continue;
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    ticks += Number(fields[11]) + Number(fields[12]);
  }
  return (ticks / TICKS_PER_SECOND) * 1000;
}

/** `--name value` from the command line, or `dflt`. */
export function cliArg(name, dflt, args = process.argv.slice(2)) {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && i + 1 < args.length ? args[i + 1] : dflt;
}
