// The measurements of the benchmark, one function per figure. Each works in a fresh schema that it
// drops afterwards. Used by run.mjs (the benchmark) and profile.mjs (the diagnostics).
import { fork } from 'node:child_process';
import { PerformanceObserver } from 'node:perf_hooks';
import path from 'node:path';
import {
  BENCH_DIR,
  BUSY_QUEUE,
  QUEUE,
  createBenchApp,
  dropSchema,
  enqueueBulk,
  globalCompletionCounter,
  latencies,
  newSchema,
  percentile,
  postgresCpuMs,
  pg,
  DATABASE_URL,
  now,
  sleep,
  sql,
  table,
} from './common.mjs';

export const LATENCY_JOBS = 500;
export const LATENCY_GAP_MS = 20;

export const log = (...parts) => process.stderr.write(`[bench] ${parts.join(' ')}\n`);

/** Schemas and child processes alive right now, for the cleanup on a signal or a failure. */
const schemas = new Set();
export const children = new Set();

export async function withSchema(tag, work) {
  const schema = newSchema(tag);
  schemas.add(schema);
  try {
    return await work(schema);
  } finally {
    await dropSchema(schema);
    schemas.delete(schema);
  }
}

/** Kills the children this process started and drops the schemas still in use. */
export async function cleanup() {
  for (const child of children) child.kill('SIGTERM');
  for (const schema of schemas) await dropSchema(schema).catch(() => undefined);
}

/** Forks worker-child.mjs with `cfg`; `next(type)` waits for its next message of that type. */
export function startChild(cfg, execArgv = process.execArgv) {
  const child = fork(path.join(BENCH_DIR, 'worker-child.mjs'), [JSON.stringify(cfg)], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    execArgv,
  });
  children.add(child);
  const waiting = new Map();
  const inbox = [];
  let failure;
  const fail = (error) => {
    failure ??= error;
    for (const w of waiting.values()) w.reject(failure);
    waiting.clear();
  };
  child.on('message', (m) => {
    if (m?.type === 'error') return fail(new Error(`worker child failed: ${m.message}`));
    const w = waiting.get(m?.type);
    if (w) {
      waiting.delete(m.type);
      w.resolve(m);
    } else inbox.push(m);
  });
  const exited = new Promise((resolve) =>
    child.on('exit', (code, signal) => {
      children.delete(child);
      if (code !== 0) fail(new Error(`worker child exited with ${signal ?? code}`));
      resolve(code);
    }),
  );
  return {
    child,
    exited,
    next(type, timeoutMs = 600_000) {
      const queued = inbox.findIndex((m) => m.type === type);
      if (queued >= 0) return Promise.resolve(inbox.splice(queued, 1)[0]);
      if (failure) return Promise.reject(failure);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`timed out waiting for "${type}" from the worker child`)), timeoutMs);
        waiting.set(type, {
          resolve: (m) => (clearTimeout(timer), resolve(m)),
          reject: (e) => (clearTimeout(timer), reject(e)),
        });
      });
    },
  };
}

/**
 * jobs/s of `jobs` enqueues through a producer-only app: `seq` (one add() at a time),
 * `concurrent10` (10 producers calling add() in a loop) or `bulk` (addBulk of 1000 at a time);
 * `seq_unique` and `bulk_unique` the same with a distinct unique key per job.
 * `patch(app)` lets the diagnostics alter the app before the clock starts.
 */
export async function enqueue(mode, jobs, { patch } = {}) {
  return withSchema('enq', async (schema) => {
    const { app, queue } = await createBenchApp({ schema, worker: false });
    try {
      await patch?.(app);
      const t0 = now();
      if (mode === 'seq') {
        for (let i = 0; i < jobs; i++) await queue.add(QUEUE, 'noop', { i });
      } else if (mode === 'seq_unique') {
        for (let i = 0; i < jobs; i++) await queue.add(QUEUE, 'noop', { i }, { unique: { key: `k${i}` } });
      } else if (mode === 'bulk_unique') {
        await enqueueBulk(queue, jobs, 0, (i) => ({ unique: { key: `k${i}` } }));
      } else if (mode === 'concurrent10') {
        const per = Math.ceil(jobs / 10);
        await Promise.all(
          Array.from({ length: 10 }, async (_, p) => {
            for (let i = p * per; i < Math.min(jobs, (p + 1) * per); i++) await queue.add(QUEUE, 'noop', { i });
          }),
        );
      } else {
        await enqueueBulk(queue, jobs);
      }
      const rate = (jobs / (now() - t0)) * 1000;
      const [{ n }] = await sql(`SELECT count(*)::int AS n FROM ${table(schema)}`);
      if (n !== jobs) throw new Error(`enqueue_${mode}: ${n} rows instead of ${jobs}`);
      return rate;
    } finally {
      await app.close();
    }
  });
}

/**
 * Pre-enqueues `jobs` jobs with addBulk (producer-only app), ANALYZEs the table like the raw
 * reference does, then drains them in a child worker process. Returns the child's result
 * (jobsPerSec, peakRssMb, ...).
 */
export async function drain({ jobs, concurrency, trace = false, poolSize, analyze = true, variants, execArgv, finishedRows = 0, globalListener = false, queueOptions, claimAhead }) {
  return withSchema('drain', async (schema) => {
    // NOTE: another process (this one) listens globally to `completed` during the whole drain, so
    // the worker sends every completion by NOTIFY: the cost of a global listener on the drain.
    const Counter = globalListener ? globalCompletionCounter() : undefined;
    const listener = Counter ? await createBenchApp({ schema, worker: false, providers: [Counter] }) : undefined;
    try {
      const result = await drainInto(schema, { jobs, concurrency, trace, poolSize, analyze, variants, execArgv, finishedRows, queueOptions, claimAhead });
      if (Counter) log(`drain with a global completed listener: it heard ${Counter.heard} of ${jobs} completions by the end of the drain`);
      return result;
    } finally {
      await listener?.app.close();
    }
  });
}

async function drainInto(schema, { jobs, concurrency, trace, poolSize, analyze, variants, execArgv, finishedRows, queueOptions, claimAhead }) {
  {
    const { app, queue } = await createBenchApp({ schema, worker: false });
    try {
      // Finished jobs already in the table (to show they do not slow claims): written by SQL,
      // as old completed rows of the same queue, before the pending ones.
      if (finishedRows > 0) {
        await sql(
          `INSERT INTO ${table(schema)} (queue, name, data, state, attempts, claims, max_attempts, result, started_at, finished_at)
           SELECT $1, 'noop', jsonb_build_object('i', -g), 'completed', 1, 1, 3, 'null', now() - interval '1 hour', now() - interval '1 hour'
           FROM generate_series(1, $2) AS g`,
          [QUEUE, finishedRows],
        );
        await sql(`VACUUM ANALYZE ${table(schema)}`);
        log(`drain: ${finishedRows} finished rows written first`);
      }
      await enqueueBulk(queue, jobs);
    } finally {
      await app.close();
    }
    if (analyze) await sql(`ANALYZE ${table(schema)}`);
    const worker = startChild({ mode: 'drain', schema, jobs, concurrency, trace, poolSize, variants, queueOptions, claimAhead }, execArgv);
    // NOTE: every postgres process of the machine, from the child's start (its boot included) to
    // its result: approximate on a shared server, exact on a quiet one.
    const pg0 = postgresCpuMs();
    const result = await worker.next('result');
    result.postgresCpuUsPerJob = ((postgresCpuMs() - pg0) * 1000) / jobs;
    await worker.exited;
    log(`drain ${jobs} c=${concurrency}: ${result.jobsPerSec.toFixed(0)} jobs/s (${result.ms.toFixed(0)} ms; all handled at ${result.handledMs.toFixed(0)} ms; worker boot ${result.bootMs.toFixed(0)} ms, not counted; peak RSS ${result.peakRssMb.toFixed(1)} MB)${bufferText(result.buffer)}`);
    return result;
  }
}

/** The claim-ahead buffer's figures of a drain, for the log line. */
export function bufferText(b) {
  if (!b || b.started === 0) return '';
  const mean = b.totalWaitMs / b.started;
  return `; buffer: ${b.started} jobs via the buffer, mean wait ${mean.toFixed(2)} ms (max ${b.maxWaitMs.toFixed(0)}), claim round trip ${b.roundTripMs.toFixed(2)} ms, slot ${b.slotMs.toFixed(3)} ms, last size ${b.ahead}, handed back ${b.handedBack}`;
}

/** Collects this process's GC pauses while `work` runs (to explain latency tails); logs the longest. */
async function watchGc(label, work) {
  const pauses = [];
  const observer = new PerformanceObserver((list) => list.getEntries().forEach((e) => pauses.push(e.duration)));
  observer.observe({ entryTypes: ['gc'] });
  try {
    return await work();
  } finally {
    observer.disconnect();
    const longest = pauses.length ? Math.max(...pauses) : 0;
    log(`${label}: ${pauses.length} GC pause(s) in this process, longest ${longest.toFixed(1)} ms, over 10 ms: ${pauses.filter((d) => d > 10).length}`);
  }
}

/** Sends LATENCY_JOBS jobs LATENCY_GAP_MS apart without awaiting each add(), like the reference. */
async function produceSpaced(queue) {
  const sent = new Float64Array(LATENCY_JOBS);
  const base = now() + 10;
  const inflight = [];
  for (let i = 0; i < LATENCY_JOBS; i++) {
    const wait = base + i * LATENCY_GAP_MS - now();
    if (wait > 0) await sleep(wait);
    sent[i] = now();
    inflight.push(queue.add(QUEUE, 'noop', { i }));
  }
  await Promise.all(inflight);
  return sent;
}

/**
 * Keeps BUSY_QUEUE of `schema` draining: tops it up by SQL (server-side rows, no JavaScript in this
 * process) whenever fewer than `low` of its jobs are pending. Resolves with the rows added once
 * `stop()` was called.
 */
function feedBusyQueue(schema, { low = 10_000, chunk = 20_000 } = {}) {
  let stopped = false;
  const done = (async () => {
    const client = new pg.Client({ connectionString: DATABASE_URL });
    await client.connect();
    let added = 0;
    try {
      while (!stopped) {
        const { rows } = await client.query(`SELECT count(*)::int AS n FROM ${table(schema)} WHERE queue = $1 AND state = 'pending'`, [BUSY_QUEUE]);
        if (rows[0].n < low) {
          await client.query(`INSERT INTO ${table(schema)} (queue, name, data) SELECT $1, 'noop', jsonb_build_object('i', g) FROM generate_series(1, $2) AS g`, [BUSY_QUEUE, chunk]);
          added += chunk;
        } else await sleep(20);
      }
    } finally {
      await client.end();
    }
    return added;
  })();
  return { stop: () => ((stopped = true), done) };
}

/**
 * Producer in this process, idle worker (LISTEN on) in a child: the wake-up must come by NOTIFY.
 * With `busy` ({ concurrency }), the child also runs BUSY_QUEUE's no-op jobs, kept draining the
 * whole time (`latency_busy`): pickup latency of one queue while another drains.
 */
export async function latencyCrossProcess({ concurrency, trace = false, variants, busy, claimAhead }) {
  return withSchema(busy ? 'latbusy' : 'lat', async (schema) => {
    const { app, queue } = await createBenchApp({ schema, worker: false });
    const feeder = busy ? feedBusyQueue(schema) : undefined;
    const worker = startChild({ mode: 'latency', schema, jobs: LATENCY_JOBS, concurrency, trace, variants, busy, claimAhead });
    try {
      await worker.next('ready', 60_000);
      await sleep(200);
      const t0 = now();
      const sent = await watchGc('latency producer', () => produceSpaced(queue));
      const { seen, stages, busyHandled } = await worker.next('seen', 10_000);
      const result = latencies(sent, seen.map((t) => (t === null ? NaN : t)));
      if (stages) result.stages = stageBreakdown(sent, seen, stages);
      if (busy) {
        result.busyJobsPerSec = (busyHandled / (now() - t0)) * 1000;
        log(`latency while ${BUSY_QUEUE} drains: p50 ${result.p50.toFixed(2)} ms, p99 ${result.p99.toFixed(2)} ms; ${BUSY_QUEUE} drained ${busyHandled} jobs meanwhile (${result.busyJobsPerSec.toFixed(0)} jobs/s, concurrency ${busy.concurrency})`);
      }
      return result;
    } finally {
      await feeder?.stop();
      if (worker.child.connected) worker.child.send({ type: 'stop' });
      await worker.exited;
      await app.close();
    }
  });
}

/** Median and p99 of each stage of the pickup (diagnostics). */
function stageBreakdown(sent, seen, { notified, claimStart, claimEnd }) {
  const stat = (f) => {
    const v = Array.from(sent, (_, i) => f(i)).filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
    const r = (x) => Math.round(x * 100) / 100;
    return { p50: r(percentile(v, 50)), p99: r(percentile(v, 99)), n: v.length };
  };
  return {
    sendToNotify: stat((i) => notified[i] - sent[i]),
    notifyToClaimStart: stat((i) => claimStart[i] - notified[i]),
    claim: stat((i) => claimEnd[i] - claimStart[i]),
    claimEndToHandler: stat((i) => seen[i] - claimEnd[i]),
  };
}

/** Producer and worker in one app: the in-process wake-up after add() applies. */
export async function latencyInProcess({ concurrency }) {
  return withSchema('latin', async (schema) => {
    const seen = new Float64Array(LATENCY_JOBS).fill(NaN);
    let count = 0;
    let allSeen;
    const done = new Promise((resolve) => (allSeen = resolve));
    const { app, queue } = await createBenchApp({
      schema,
      worker: { listen: true },
      processor: {
        concurrency,
        handler: (job) => {
          seen[job.data.i] = now();
          if (++count === LATENCY_JOBS) allSeen();
        },
      },
    });
    try {
      await sleep(200);
      const sent = await watchGc('latency in-process', () => produceSpaced(queue));
      await Promise.race([done, sleep(10_000)]);
      return latencies(sent, seen);
    } finally {
      await app.close();
    }
  });
}
