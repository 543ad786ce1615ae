#!/usr/bin/env node
// Diagnostics of claim ahead (worker.claimAhead), with it off and on, alternating; not part of
// `npm run bench`. Run `npm run build` first. See bench/README.md ("Fast drains at ordinary
// concurrency") and docs/performance.md ("Claim ahead").
//
//   node bench/claim-ahead.mjs cpu   [--concurrency 10,50,100] [--jobs 20000] [--reps 2]
//        drain jobs/s and CPU per job, the worker's and PostgreSQL's
//   node bench/claim-ahead.mjs costs [--concurrency 10,50] [--reps 2]
//        active rows left by a SIGKILL in the middle of a 100,000-job drain, and the pickup of
//        priority-10 jobs added every 25 ms during a 200,000-job drain (one process)
import { drain, startChild, withSchema } from './measure.mjs';
import { cliArg as arg, createBenchApp, enqueueBulk, now, QUEUE, sleep, sql, table } from './common.mjs';

const MODE = process.argv[2];
const CONCURRENCIES = String(arg('concurrency', MODE === 'costs' ? '10,50' : '10,50,100')).split(',').map(Number);
const JOBS = Number(arg('jobs', 20000));
const REPS = Number(arg('reps', 2));
const VARIANTS = [false, undefined]; // claimAhead: false, then the default

/** Active rows a SIGKILLed worker leaves behind once it has completed over a fifth of 100,000 jobs. */
async function stranded(claimAhead, concurrency) {
  return withSchema('strand', async (schema) => {
    const { app, queue } = await createBenchApp({ schema, worker: false });
    await enqueueBulk(queue, 100000);
    await app.close();
    const worker = startChild({ mode: 'drain', schema, jobs: 100000, concurrency, claimAhead });
    worker.exited.catch(() => undefined);
    for (;;) {
      const [{ n }] = await sql(`SELECT count(*)::int AS n FROM ${table(schema)} WHERE state = 'completed'`);
      if (n > 20000) break;
      await sleep(20);
    }
    worker.child.kill('SIGKILL');
    await new Promise((resolve) => worker.child.once('exit', resolve));
    const [{ n }] = await sql(`SELECT count(*)::int AS n FROM ${table(schema)} WHERE state = 'active'`);
    return n;
  });
}

/** Pickup (ms) of 40 priority-10 jobs added 25 ms apart while 200,000 no-op jobs drain. */
async function priorityPickup(claimAhead, concurrency) {
  return withSchema('prio', async (schema) => {
    const seen = [];
    const { app } = await createBenchApp({
      schema,
      worker: { listen: true, ...(claimAhead === false ? { claimAhead: false } : {}) },
      processor: { concurrency, handler: (job) => void (job.data.hp && seen.push(now() - job.data.hp)) },
    });
    const { app: producerApp, queue } = await createBenchApp({ schema, worker: false });
    try {
      await enqueueBulk(queue, 200000);
      await sleep(300);
      for (let i = 0; i < 40; i++) {
        await queue.add(QUEUE, 'noop', { hp: now() }, { priority: 10 });
        await sleep(25);
      }
      const until = Date.now() + 10_000;
      while (seen.length < 40 && Date.now() < until) await sleep(10);
    } finally {
      await app.close();
      await producerApp.close();
    }
    seen.sort((a, b) => a - b);
    return { n: seen.length, p50: +seen[Math.floor(seen.length / 2)].toFixed(1), p95: +seen[Math.floor(seen.length * 0.95)].toFixed(1) };
  });
}

if (!['cpu', 'costs'].includes(MODE)) {
  process.stderr.write('usage: node bench/claim-ahead.mjs cpu|costs [--concurrency 10,50] [--jobs 20000] [--reps 2]\n');
  process.exit(2);
}
for (let rep = 0; rep < REPS; rep++) {
  for (const concurrency of CONCURRENCIES) {
    for (const claimAhead of VARIANTS) {
      const line = { concurrency, claimAhead: claimAhead !== false };
      if (MODE === 'cpu') {
        const r = await drain({ jobs: JOBS, concurrency, claimAhead });
        Object.assign(line, { jobsPerSec: Math.round(r.jobsPerSec), workerCpuUsPerJob: +r.workerCpuUsPerJob.toFixed(1), postgresCpuUsPerJob: +r.postgresCpuUsPerJob.toFixed(1) });
      } else {
        Object.assign(line, { strandedBySigkill: await stranded(claimAhead, concurrency), highPriorityPickupMs: await priorityPickup(claimAhead, concurrency) });
      }
      console.log(JSON.stringify(line));
    }
  }
}
