// Cron schedules at scale (issue 14): 10,000 runtime schedules (one per user) due at the same slot,
// enqueued by one worker process; and what 10,000 idle schedules cost the database. Run through
// `node bench/run.mjs --only schedules` (not in the default groups) after `npm run build`.
//
// It works in a database of its own (created and dropped here), so pg_stat_database counts only
// this run: `active_time` (ms the server spent executing statements) and `xact_commit`.
import { randomBytes } from 'node:crypto';
import { DATABASE_URL, createBenchApp, sleep, sql } from './common.mjs';
import { log } from './measure.mjs';

const SCHEDULES = 10_000;
const QUEUE = 'bench-schedules';

const stats = async (database) => {
  // NOTE: backends flush their statistics when idle, at most once a second: wait for them.
  await sleep(1500);
  const [row] = await sql(`SELECT active_time::float8 AS active_ms, xact_commit::float8 AS commits FROM pg_stat_database WHERE datname = $1`, [database]);
  return row;
};

/**
 * Returns the figures: `schedules_enqueue_lag_ms` (from the slot until the last of its 10,000 jobs
 * was inserted, the database's clock), `schedules_ticks` (transactions that enqueued them),
 * `schedules_db_ms_per_tick` (server time spent executing statements in the database during the
 * enqueue, per tick), `schedules_idle_queries_per_s` (transactions per second of the worker process
 * with 10,000 schedules due in an hour, everything it does included).
 */
export async function schedules({ idleMs = 10_000 } = {}) {
  const database = `pgq_bench_sched_${randomBytes(4).toString('hex')}`;
  const url = new URL(DATABASE_URL);
  url.pathname = `/${database}`;
  await sql(`CREATE DATABASE "${database}"`);
  const apps = [];
  try {
    const schema = 'public';
    const producer = await createBenchApp({ schema, url: url.toString() });
    apps.push(producer.app);
    // The slot: a whole second a few seconds ahead, as an hourly six-field expression ("at mm:ss").
    const [{ slot }] = await sql(`SELECT (date_trunc('second', now()) + interval '12 seconds') AS slot`, [], url.toString());
    const cron = `${slot.getUTCSeconds()} ${slot.getUTCMinutes()} * * * *`;
    await sql(`INSERT INTO "${schema}".queue_jobs_schedules (key, queue, name, cron, tz, data, next_run_at, source)
      SELECT 'user-' || i, $1, 'digest', $2, 'UTC', jsonb_build_object('userId', i), $3, 'runtime' FROM generate_series(1, ${SCHEDULES}) AS i`, [QUEUE, cron, slot], url.toString());
    const listed = await producer.queue.getSchedules();
    if (listed.length !== SCHEDULES) throw new Error(`expected ${SCHEDULES} schedules, found ${listed.length}`);
    await producer.app.close();
    apps.pop();

    const worker = await createBenchApp({ schema, url: url.toString(), worker: {} });
    apps.push(worker.app);
    const before = await stats(database);
    const [{ early }] = await sql(`SELECT now() < $1::timestamptz AS early`, [slot], url.toString());
    if (!early) throw new Error('the worker booted after the slot: the database time before it was not measured');
    const deadline = Date.now() + 60_000;
    let done;
    while (Date.now() < deadline) {
      [done] = await sql(`SELECT count(*)::int AS n, count(DISTINCT created_at)::int AS ticks,
        (extract(epoch FROM max(created_at) - $1::timestamptz) * 1000)::float8 AS lag_ms FROM "${schema}".queue_jobs WHERE schedule_key IS NOT NULL`, [slot], url.toString());
      if (done.n >= SCHEDULES) break;
      await sleep(50);
    }
    if (done.n !== SCHEDULES) throw new Error(`only ${done.n} of ${SCHEDULES} slot jobs were enqueued within 60 s`);
    const after = await stats(database);
    // Idle: every schedule's next run is an hour away now. NOTE: after a pause, so autovacuum's
    // analyze of the tables just filled (its own transactions in this database) is not counted.
    await sleep(5000);
    const idleStart = await stats(database);
    await sleep(idleMs);
    const idleEnd = await stats(database);
    const figures = {
      schedules_enqueue_lag_ms: done.lag_ms,
      schedules_ticks: done.ticks,
      schedules_db_ms_per_tick: (after.active_ms - before.active_ms) / done.ticks,
      schedules_idle_queries_per_s: (idleEnd.commits - idleStart.commits) / ((idleMs + 1500) / 1000),
    };
    log(`schedules: ${SCHEDULES} due at ${slot.toISOString()}: all enqueued ${done.lag_ms.toFixed(0)} ms after the slot in ${done.ticks} ticks, ` +
      `${figures.schedules_db_ms_per_tick.toFixed(1)} ms of database time per tick; idle: ${figures.schedules_idle_queries_per_s.toFixed(2)} transactions/s`);
    return figures;
  } finally {
    for (const app of apps.reverse()) await app.close().catch(() => undefined);
    await sql(`DROP DATABASE IF EXISTS "${database}" WITH (FORCE)`);
  }
}
