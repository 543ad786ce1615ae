// A worker process of the benchmark, forked by run.mjs so that the worker's memory and event loop
// are its own (no producer in it) and a job's wake-up has to cross processes through NOTIFY.
//
//   mode "drain":   boots a worker app on a queue that already holds `jobs` no-op jobs, waits until
//                   the handler ran `jobs` times, then confirms with its own pg client that every job
//                   is `completed` in the database. Reports the time from the worker's start
//                   (QueueWorker.onApplicationBootstrap) to that confirmation, and the peak RSS
//                   sampled every 50 ms.
//   mode "latency": boots an idle worker (LISTEN on) and records when each job's handler starts,
//                   indexed by `data.i`; sends the timestamps back once `jobs` jobs have been seen.
import { performance } from 'node:perf_hooks';
import { createBenchApp, DATABASE_URL, now, pg, QUEUE, QueueWorker, require, ROOT, sleep, table, waitDrained } from './common.mjs';
import { applyClassVariants, applyStatementVariants, assertKnownVariants } from './variants.mjs';

const cfg = JSON.parse(process.argv[2]);
// Diagnostics only (profile.mjs): candidate library changes to measure; the benchmark passes none.
assertKnownVariants(cfg.variants);
applyClassVariants(cfg.variants);
const send = (message) => new Promise((resolve) => process.send(message, resolve));

async function drain() {
  let peakRss = process.memoryUsage().rss;
  const sampler = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage().rss)), 50);
  const confirm = new pg.Client({ connectionString: DATABASE_URL });
  await confirm.connect();

  // NOTE: the clock starts when the worker starts (after Nest's DI, TypeORM's connection and the
  // migration check), the moment the raw reference's loops start, so boot time is not counted.
  let t0;
  let cpu0;
  const original = QueueWorker.prototype.onApplicationBootstrap;
  QueueWorker.prototype.onApplicationBootstrap = function () {
    t0 ??= now();
    cpu0 ??= process.cpuUsage();
    trace?.mark();
    if (cfg.variants?.length) applyStatementVariants(this.database.repository, cfg.variants);
    return original.call(this);
  };

  const trace = cfg.trace ? startTrace() : undefined;
  let handled = 0;
  let firstHandled;
  let allHandled;
  const handledAll = new Promise((resolve) => (allHandled = resolve));
  const bootStart = now();
  const { app } = await createBenchApp({
    schema: cfg.schema,
    worker: { listen: true, ...(cfg.claimAhead === false ? { claimAhead: false } : {}) },
    processor: {
      concurrency: cfg.concurrency,
      handler: () => {
        firstHandled ??= now();
        if (++handled === cfg.jobs) allHandled();
      },
    },
    poolSize: cfg.poolSize ?? 10,
    queueOptions: cfg.queueOptions,
  });
  await handledAll;
  const tHandled = now();
  const traced = trace?.(t0);
  let polls = 0;
  if (cfg.confirmQueue) {
    // NOTE: with `confirmQueue` (bench/admin.mjs: a table holding other queues' jobs of every
    // state), only that queue's unfinished jobs count, found through the partial indexes of
    // pending and active jobs.
    for (;;) {
      polls++;
      const { rows } = await confirm.query(`SELECT count(*)::int AS n FROM ${table(cfg.schema)} WHERE queue = $1 AND state IN ('pending', 'active')`, [cfg.confirmQueue]);
      if (rows[0].n === 0) break;
      await sleep(1);
    }
  } else polls = await waitDrained(confirm, cfg.schema, 1);
  const t1 = now();
  const cpu = process.cpuUsage(cpu0);
  clearInterval(sampler);
  const buffer = app.get(QueueWorker).claimAheadStats?.()[Object.keys(app.get(QueueWorker).claimAheadStats())[0]];
  peakRss = Math.max(peakRss, process.memoryUsage().rss);
  await send({
    type: 'result',
    jobsPerSec: (cfg.jobs / (t1 - t0)) * 1000,
    ms: t1 - t0,
    bootMs: t0 - bootStart,
    handledMs: tHandled - t0,
    // When the first job's handler ran, from the worker's start: the worker's boot to its first claim.
    firstJobMs: firstHandled - t0,
    confirmPolls: polls,
    peakRssMb: peakRss / 1048576,
    trace: traced,
    buffer,
    // The worker process's CPU (every thread) from its start to the confirmation, µs per job.
    workerCpuUsPerJob: (cpu.user + cpu.system) / cfg.jobs,
  });
  await app.close();
  await confirm.end();
}

/**
 * Diagnostics (profile.mjs): times every claim and outcome write of the repository, and the event
 * loop's utilisation, so a drain's time can be split between the database and JavaScript.
 */
function startTrace() {
  const { JobRepository } = require(`${ROOT}/dist/lib/database/job.repository.js`);
  const calls = { claim: [], finish: [] };
  for (const method of ['claim', 'finish']) {
    const original = JobRepository.prototype[method];
    JobRepository.prototype[method] = async function (...args) {
      const start = now();
      const result = await original.apply(this, args);
      const size = method === 'claim' ? result.length : args[0].length;
      calls[method].push({ start, ms: now() - start, size, asked: method === 'claim' ? args[1] : undefined });
      return result;
    };
  }
  let elu0 = performance.eventLoopUtilization();
  const report = (t0) => {
    const elu = performance.eventLoopUtilization(elu0);
    const sum = (list, f) => list.reduce((a, c) => a + f(c), 0);
    const stats = (list) => ({
      n: list.length,
      totalMs: Math.round(sum(list, (c) => c.ms)),
      meanMs: +(sum(list, (c) => c.ms) / Math.max(1, list.length)).toFixed(2),
      meanSize: +(sum(list, (c) => c.size) / Math.max(1, list.length)).toFixed(1),
      sizes: list.slice(0, 12).map((c) => c.size),
    });
    return {
      claim: stats(calls.claim),
      finish: stats(calls.finish),
      claimAsked: calls.claim.slice(0, 12).map((c) => c.asked),
      eventLoopUtilization: +elu.utilization.toFixed(3),
      firstClaimAtMs: calls.claim.length ? +(calls.claim[0].start - t0).toFixed(1) : undefined,
    };
  };
  report.mark = () => (elu0 = performance.eventLoopUtilization());
  return report;
}

/**
 * Diagnostics (profile.mjs latency): per job, when the worker got the NOTIFY and when the claim that
 * returned the job started and ended, to split the pickup latency into its stages.
 */
function traceWakeups(jobs) {
  const { JobNotificationListener } = require(`${ROOT}/dist/lib/database/job-notification.listener.js`);
  const { JobRepository } = require(`${ROOT}/dist/lib/database/job.repository.js`);
  const stages = { notified: new Array(jobs).fill(null), claimStart: new Array(jobs).fill(null), claimEnd: new Array(jobs).fill(null) };
  let lastNotified = null;
  const onMessage = JobNotificationListener.prototype.onMessage;
  JobNotificationListener.prototype.onMessage = function (message) {
    lastNotified = now();
    return onMessage.call(this, message);
  };
  const claim = JobRepository.prototype.claim;
  JobRepository.prototype.claim = async function (...args) {
    const start = now();
    const notified = lastNotified;
    const jobs = await claim.apply(this, args);
    const end = now();
    for (const job of jobs) {
      const i = job.data?.i;
      // NOTE: the busy queue's jobs carry an `i` too; only the measured queue's are traced.
      if (job.queue !== QUEUE || typeof i !== 'number') continue;
      stages.notified[i] = notified;
      stages.claimStart[i] = start;
      stages.claimEnd[i] = end;
    }
    return jobs;
  };
  return stages;
}

async function latency() {
  const seen = new Array(cfg.jobs).fill(null);
  const stages = cfg.trace ? traceWakeups(cfg.jobs) : undefined;
  let count = 0;
  let busyHandled = 0;
  const { app } = await createBenchApp({
    schema: cfg.schema,
    worker: { listen: true, ...(cfg.claimAhead === false ? { claimAhead: false } : {}) },
    busy: cfg.busy ? { concurrency: cfg.busy.concurrency, handler: () => void busyHandled++ } : undefined,
    processor: {
      concurrency: cfg.concurrency,
      handler: (job) => {
        const t = now();
        seen[job.data.i] = t;
        if (++count === cfg.jobs) void send({ type: 'seen', seen, stages, busyHandled });
      },
    },
  });
  const stopped = new Promise((resolve) => process.on('message', (m) => m?.type === 'stop' && resolve()));
  await send({ type: 'ready', rssMb: process.memoryUsage().rss / 1048576 });
  await stopped;
  await app.close();
}

/**
 * mode "shared" (bench/limits.mjs): one of several workers of one queue: boots, says 'ready', runs
 * jobs (handler: `cfg.handlerMs` of sleep, 0 for none) until told to stop. The parent times the drain.
 */
async function shared() {
  const traced = process.env.BENCH_TRACE_LIMITED ? traceLimitedClaims() : undefined;
  const { app } = await createBenchApp({
    schema: cfg.schema,
    worker: { listen: true },
    processor: { concurrency: cfg.concurrency, handler: cfg.handlerMs ? () => sleep(cfg.handlerMs) : () => undefined },
    poolSize: cfg.poolSize ?? 10,
  });
  const stopped = new Promise((resolve) => process.on('message', (m) => m?.type === 'stop' && resolve()));
  await send({ type: 'ready' });
  await stopped;
  if (traced) console.error(`[bench] worker ${process.pid}: ${JSON.stringify(traced())}`);
  await app.close();
}

/**
 * Diagnostics (BENCH_TRACE_LIMITED=1, bench/limits.mjs): this worker's limited and permitted claims,
 * how many jobs each returned and completed, how long each took (from sending to the answer), and
 * its permit acquisitions.
 */
function traceLimitedClaims() {
  const { JobRepository } = require(`${ROOT}/dist/lib/database/job.repository.js`);
  const calls = [];
  const acquires = [];
  for (const method of ['claimLimited', 'completeAndClaimLimited', 'completeAndClaimPermitted', 'acquirePermit']) {
    const original = JobRepository.prototype[method];
    JobRepository.prototype[method] = async function (...args) {
      const start = now();
      const result = await original.apply(this, args);
      if (method === 'acquirePermit') {
        acquires.push({ ms: now() - start, slots: result.slots, share: result.share });
        return result;
      }
      calls.push({ method, ms: now() - start, jobs: result.jobs.length, completed: method.startsWith('completeAndClaim') ? args[0].length : 0, at: start });
      return result;
    };
  }
  return () => {
    const busy = calls.filter((c) => c.jobs > 0 || c.completed > 0);
    const sum = (f) => busy.reduce((a, c) => a + f(c), 0);
    const sorted = busy.map((c) => c.ms).sort((a, b) => a - b);
    return {
      claims: calls.length,
      empty: calls.length - busy.length,
      jobsPerClaim: +(sum((c) => c.jobs) / busy.length).toFixed(1),
      completedPerClaim: +(sum((c) => c.completed) / busy.length).toFixed(1),
      msP50: +(sorted[Math.floor(sorted.length / 2)] ?? 0).toFixed(2),
      msMean: +(sum((c) => c.ms) / busy.length).toFixed(2),
      spanMs: busy.length ? +(busy.at(-1).at + busy.at(-1).ms - busy[0].at).toFixed(0) : 0,
      permitted: calls.filter((c) => c.method === 'completeAndClaimPermitted').length,
      acquires: acquires.length,
      lastPermit: acquires.at(-1),
    };
  };
}

try {
  if (cfg.mode === 'drain') await drain();
  else if (cfg.mode === 'latency') await latency();
  else if (cfg.mode === 'shared') await shared();
  else throw new Error(`unknown mode ${cfg.mode}`);
  process.disconnect();
} catch (error) {
  await send({ type: 'error', message: error?.stack ?? String(error) }).catch(() => undefined);
  process.exit(1);
}

