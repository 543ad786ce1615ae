// The bench group `limits` (node bench/run.mjs --only limits): what limits cost, against the plain
// path measured in the same run. See docs/limits-and-groups.md for the figures.
//
//   limits_drain_plain_2p     20,000 no-op jobs drained by 2 worker processes of concurrency 50, no limit
//   limits_drain_plain_2p_c25 the same with concurrency 25 each: the 50 jobs in flight of the next one
//   limits_drain_global50_2p  concurrency 50 each with globalConcurrency 50 (bar: >= 0.6 of either base)
//   limits_drain_groups200_2p the same in 200 groups with groupConcurrency 1 (bar: >= 0.5 of the base)
//   limits_rate2000           rateLimit 2000/1000 ms with 20,000 pending: achieved rate over whole
//                             windows from started_at (bar: 90-100 % of the limit), and the busiest
//                             window of 1000 ms (bar: <= 2000)
//   limits_claim_ms_g<G>      one limited claim of 50 (groupConcurrency 1) with G groups holding pending
//                             jobs (10, 1,000, 100,000), in a rolled-back transaction; and the plain
//                             claim of 50 on the same table, for scale
import { QUEUE, createBenchApp, enqueueBulk, now, pg, DATABASE_URL, require, ROOT, sql, table, waitDrained } from './common.mjs';
import { log, startChild, withSchema } from './measure.mjs';

const registry = (schema) => `"${schema}"."queue_jobs_queues"`;

// NOTE: as runtime overrides (updateQueue's column): the workers' boot declarations rewrite
// `declared` (their processors declare no limit here), never `overrides`.
async function setLimits(schema, limits) {
  await sql(
    `INSERT INTO ${registry(schema)} (name, overrides) VALUES ($1, $2::jsonb) ON CONFLICT (name) DO UPDATE SET overrides = EXCLUDED.overrides`,
    [QUEUE, JSON.stringify(limits)],
  );
}

/** Fills a fresh schema with `jobs` pending jobs (addBulk), optionally limits and groups, paused. */
async function prepare(schema, { jobs, limits, groups }) {
  const { app, queue } = await createBenchApp({ schema, worker: false });
  try {
    await queue.pause(QUEUE);
    await enqueueBulk(queue, jobs);
  } finally {
    await app.close();
  }
  if (groups) await sql(`UPDATE ${table(schema)} SET group_key = 'g' || (id % $1)`, [groups]);
  if (limits) await setLimits(schema, limits);
  await sql(`VACUUM ANALYZE ${table(schema)}`);
}

/**
 * Drains `jobs` jobs with `processes` worker processes of `concurrency` each; the clock runs from
 * the resume (every worker booted and idle) until the database has no job left that is not
 * completed. Returns jobs/s.
 */
export async function sharedDrain({ jobs, processes = 2, concurrency = 50, limits, groups, handlerMs = 0 }) {
  return withSchema('lim', async (schema) => {
    await prepare(schema, { jobs, limits, groups });
    const workers = Array.from({ length: processes }, () => startChild({ mode: 'shared', schema, concurrency, handlerMs }));
    try {
      await Promise.all(workers.map((w) => w.next('ready', 120_000)));
      const client = new pg.Client({ connectionString: DATABASE_URL });
      await client.connect();
      try {
        const t0 = now();
        await client.query(`UPDATE ${registry(schema)} SET paused = false, paused_at = NULL WHERE name = $1`, [QUEUE]);
        await client.query(`SELECT pg_notify($1, json_build_object('t', 'job', 'q', $2::text, 'in', 0)::text)`, [`${schema}.queue_jobs`, QUEUE]);
        await waitDrained(client, schema, 5);
        const ms = now() - t0;
        const stats = await rateStats(client, schema, limits?.rateLimit?.perMs ?? 1000);
        return { jobsPerSec: (jobs / ms) * 1000, ms, ...stats };
      } finally {
        await client.end();
      }
    } finally {
      for (const w of workers) if (w.child.connected) w.child.send({ type: 'stop' });
      await Promise.all(workers.map((w) => w.exited));
    }
  });
}

/**
 * From started_at: the busiest half-open window of `perMs`, and the rate over the whole windows
 * from the first start (starts in [first, first + k * perMs) / k windows).
 */
async function rateStats(client, schema, perMs) {
  const { rows: [w] } = await client.query(
    `SELECT max(n)::int AS busiest FROM (SELECT count(*) OVER (ORDER BY started_at RANGE BETWEEN CURRENT ROW AND ($1 * interval '1 millisecond' - interval '1 microsecond') FOLLOWING) AS n FROM ${table(schema)}) x`,
    [perMs],
  );
  const { rows: [r] } = await client.query(
    `WITH b AS (SELECT min(started_at) AS first, floor(extract(epoch FROM max(started_at) - min(started_at)) * 1000 / $1)::int AS k FROM ${table(schema)})
     SELECT b.k, (SELECT count(*)::int FROM ${table(schema)}, b AS bb WHERE started_at < bb.first + bb.k * $1 * interval '1 millisecond') AS n FROM b`,
    [perMs],
  );
  return { busiestWindow: w.busiest, perWindow: r.k > 0 ? r.n / r.k : null, windows: r.k };
}

/** Median ms of one claim of 50 (limited, groupConcurrency 1) with `groups` groups of pending jobs; and of the plain claim. */
async function claimTimes(groups, { reps = 30 } = {}) {
  return withSchema('limclaim', async (schema) => {
    const jobs = Math.max(groups, 20_000);
    await prepare(schema, { jobs, groups, limits: { groupConcurrency: 1 } });
    await sql(`UPDATE ${registry(schema)} SET paused = false WHERE name = $1`, [QUEUE]);
    const { createTableNaming } = require(`${ROOT}/dist/lib/database/table-naming.js`);
    const { buildJobStatements } = require(`${ROOT}/dist/lib/database/sql/job.statements.js`);
    const statements = buildJobStatements(createTableNaming(schema));
    const params = [QUEUE, 50, 'bench', 30_000, 3, JSON.stringify({ type: 'fixed', delayMs: 1000 }), null];
    const client = new pg.Client({ connectionString: DATABASE_URL });
    await client.connect();
    const time = async (text) => {
      const ms = [];
      let claimed = 0;
      for (let i = 0; i < reps; i++) {
        await client.query('BEGIN');
        const t = now();
        const { rows } = await client.query({ name: text === statements.claim ? 'plain' : 'limited', text, values: params, rowMode: 'array' });
        ms.push(now() - t);
        claimed += text === statements.claim ? rows.length : rows.length - 1;
        // NOTE: rolled back: every repetition claims from the same table (and the same cursor).
        await client.query('ROLLBACK');
      }
      ms.sort((a, b) => a - b);
      return { ms: ms[Math.floor(ms.length / 2)], perClaim: claimed / reps };
    };
    try {
      const limited = await time(statements.claimLimited);
      // The plain claim on the same table: the limits removed (it steps aside for a limited queue).
      await sql(`UPDATE ${registry(schema)} SET overrides = '{}' WHERE name = $1`, [QUEUE]);
      const plain = await time(statements.claim);
      return { limited, plain };
    } finally {
      await client.end();
    }
  });
}

/** Runs the group once; `record(metric, unit, value)` as in run.mjs. */
export async function limitsGroup(record, { jobs = 20_000 } = {}) {
  const plain = await sharedDrain({ jobs });
  record('limits_drain_plain_2p', 'jobs/s', plain.jobsPerSec);
  // NOTE: the same 50 jobs in flight as under globalConcurrency 50, without the limit: what the
  // enforcement costs, apart from the cap on parallelism itself.
  const plain50 = await sharedDrain({ jobs, concurrency: 25 });
  record('limits_drain_plain_2p_c25', 'jobs/s', plain50.jobsPerSec);
  const global = await sharedDrain({ jobs, limits: { globalConcurrency: 50 } });
  record('limits_drain_global50_2p', 'jobs/s', global.jobsPerSec);
  const grouped = await sharedDrain({ jobs, limits: { groupConcurrency: 1 }, groups: 200 });
  record('limits_drain_groups200_2p', 'jobs/s', grouped.jobsPerSec);
  const rate = await sharedDrain({ jobs, limits: { rateLimit: { max: 2000, perMs: 1000 } } });
  log(`limits rate: ${rate.perWindow?.toFixed(0)} starts per whole window over ${rate.windows} windows; busiest window ${rate.busiestWindow}`);
  record('limits_rate2000_achieved', 'starts/s', rate.perWindow ?? 0);
  record('limits_rate2000_busiest_window', 'starts', rate.busiestWindow);
  for (const groups of [10, 1000, 100_000]) {
    const t = await claimTimes(groups);
    log(`claim with ${groups} groups: limited ${t.limited.ms.toFixed(2)} ms (${t.limited.perClaim.toFixed(0)} jobs), plain ${t.plain.ms.toFixed(2)} ms (${t.plain.perClaim.toFixed(0)} jobs)`);
    record(`limits_claim_ms_g${groups}`, 'ms', t.limited.ms);
    record(`limits_claim_plain_ms_g${groups}`, 'ms', t.plain.ms);
  }
}

/** Ratios and bars of the group, from the medians (`ours[metric].median`). */
export function limitsRatios(ours) {
  const lines = [];
  const ratio = (metric, base, min) => {
    if (!ours[metric] || !ours[base]) return;
    const r = Math.round((ours[metric].median / ours[base].median) * 1000) / 1000;
    lines.push({ metric, base, ratio: r, bar: `ratio >= ${min}`, pass: r >= min });
  };
  ratio('limits_drain_global50_2p', 'limits_drain_plain_2p_c25', 0.6);
  ratio('limits_drain_global50_2p', 'limits_drain_plain_2p', 0.6);
  ratio('limits_drain_groups200_2p', 'limits_drain_plain_2p', 0.5);
  ratio('limits_drain_global50_2p', 'drain', 0.6);
  ratio('limits_drain_groups200_2p', 'drain', 0.5);
  const achieved = ours.limits_rate2000_achieved?.median;
  if (achieved !== undefined) lines.push({ metric: 'limits_rate2000_achieved', ratio: achieved / 2000, bar: '0.9 <= achieved/limit <= 1', pass: achieved >= 1800 && achieved <= 2000 });
  const busiest = ours.limits_rate2000_busiest_window?.max;
  if (busiest !== undefined) lines.push({ metric: 'limits_rate2000_busiest_window', value: busiest, bar: 'every window <= 2000', pass: busiest <= 2000 });
  return lines;
}

