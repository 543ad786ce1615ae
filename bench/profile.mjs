#!/usr/bin/env node
// Diagnostics behind the findings in bench/README.md: where the library's time goes compared with
// the raw reference. Not part of `npm run bench`; run `npm run build` first.
//
//   node bench/profile.mjs enqueue [--jobs 5000]   single-row insert: statement shape vs add()
//   node bench/profile.mjs bulk    [--jobs 20000]  1000-row insert: statement shapes, COPY pieces, addBulk()
//   node bench/profile.mjs latency [--reps 3] [--busy]  cross-process pickup split into stages
//                                  (--busy: while another queue of the worker drains)
//   node bench/profile.mjs drain   [--jobs 20000] [--concurrency 200,1000] [--variants "none;a+b"]
//                                  [--cpu-prof DIR]   claims/writes traced; variants: variants.mjs
//
// Every variant runs in a fresh schema (dropped afterwards) on a table made by the library's own
// migration, so the table, its indexes and its storage settings are the library's.
import { performance } from 'node:perf_hooks';
import { DATABASE_URL, QUEUE, ROOT, lib, now, pg, require, summarize } from './common.mjs';
import { cleanup, drain, enqueue, latencyCrossProcess, log, withSchema } from './measure.mjs';
import { PRODUCER_VARIANTS, insertNoNotify as withoutNotify } from './variants.mjs';

const { buildJobStatements } = require(`${ROOT}/dist/lib/database/sql/job.statements.js`);
const { createTableNaming } = require(`${ROOT}/dist/lib/database/table-naming.js`);
const { QueueDatabase } = require(`${ROOT}/dist/lib/database/queue-database.js`);
const constants = require(`${ROOT}/dist/lib/queue.constants.js`);

const args = process.argv.slice(2);
const arg = (name, dflt) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && i + 1 < args.length ? args[i + 1] : dflt;
};
const what = args[0];
const REPS = Number(arg('reps', 3));
const out = (o) => console.log(JSON.stringify(o));

/** Creates the library's table in `schema` with its migration; returns names and statements. */
async function libTable(client, schema) {
  const Migration = lib.createQueueMigration({ schema });
  await new Migration().up({ query: (text) => client.query(text) });
  const naming = createTableNaming(schema);
  return { naming, T: naming.qualified, statements: buildJobStatements(naming) };
}

const RAW_TABLE = (S) => `CREATE TABLE "${S}".raw_jobs (
  id bigserial PRIMARY KEY, payload jsonb NOT NULL, status text NOT NULL DEFAULT 'pending',
  attempts int NOT NULL DEFAULT 0, created_at timestamptz NOT NULL DEFAULT now(),
  locked_at timestamptz, finished_at timestamptz);
  CREATE INDEX ON "${S}".raw_jobs (id) WHERE status = 'pending'`;


/** jobs/s of `insert(pool, i)` called `jobs` times, sequentially or from 10 concurrent loops. */
async function rate(jobs, mode, insert, pool) {
  const t0 = now();
  if (mode === 'seq') for (let i = 0; i < jobs; i++) await insert(pool, i);
  else {
    const per = Math.ceil(jobs / 10);
    await Promise.all(Array.from({ length: 10 }, async (_, p) => {
      for (let i = p * per; i < Math.min(jobs, (p + 1) * per); i++) await insert(pool, i);
    }));
  }
  return (jobs / (now() - t0)) * 1000;
}

/** One run of `variant` on a fresh table: jobs/s. */
async function runVariant(mode, jobs, variant) {
  return withSchema('prof', async (schema) => {
    if (variant.app) {
      const undo = variant.producer ? PRODUCER_VARIANTS[variant.producer]() : undefined;
      // Library constants swapped for this run only (the compiled code reads them at each use).
      const saved = Object.fromEntries(Object.keys(variant.constants ?? {}).map((k) => [k, constants[k]]));
      Object.assign(constants, variant.constants ?? {});
      try {
        return await enqueue(mode === 'bulk' ? 'bulk' : mode, jobs, { patch: variant.patch });
      } finally {
        Object.assign(constants, saved);
        undo?.();
      }
    }
    const setup = new pg.Client({ connectionString: DATABASE_URL });
    await setup.connect();
    let ctx;
    try {
      ctx = await libTable(setup, schema);
      await setup.query(RAW_TABLE(schema));
    } finally {
      await setup.end();
    }
    const pool = new pg.Pool({ connectionString: DATABASE_URL, max: 10 });
    try {
      const calls = mode === 'bulk' ? jobs / 1000 : jobs;
      const perCall = mode === 'bulk' ? 1000 : 1;
      return (await rate(calls, mode === 'bulk' ? 'seq' : mode, (p, i) => variant.run(p, i, { ...ctx, schema }), pool)) * perCall;
    } finally {
      await pool.end();
    }
  });
}

/** Runs every variant REPS times, interleaved (so drift on the machine hits all alike); prints medians. */
async function measureVariants(mode, jobs, variants, names) {
  const values = Object.fromEntries(names.map((n) => [n, []]));
  for (let r = 0; r < REPS; r++) {
    for (const name of names) {
      if (!variants[name]) throw new Error(`unknown variant ${name}`);
      values[name].push(await runVariant(mode, jobs, variants[name]));
    }
  }
  for (const name of names) {
    const s = summarize(values[name]);
    log(`${mode} ${name}: ${s.median.toFixed(0)} jobs/s`);
    out({ experiment: `${mode}:${name}`, unit: 'jobs/s', ...s });
  }
}

/** Replaces the library's insert statement in a running app (diagnostics only). */
const patchInsert = (transform) => async (app) => {
  const repository = await app.get(QueueDatabase).getRepository();
  repository.statements.insert = transform(repository.statements.insert);
};

async function enqueueShapes() {
  const jobs = Number(arg('jobs', 5000));
  const variants = {
    raw_reference_insert: { run: (p, i, c) => p.query(`INSERT INTO "${c.schema}".raw_jobs (payload) VALUES ($1)`, [{ i }]) },
    raw_reference_insert_notify: {
      run: (p, i, c) => p.query(`WITH j AS (INSERT INTO "${c.schema}".raw_jobs (payload) VALUES ($1) RETURNING id) SELECT pg_notify('raw_x', '') FROM j`, [{ i }]),
    },
    lib_table_plain_insert: { run: (p, i, c) => p.query(`INSERT INTO ${c.T} (queue, name, data) VALUES ($1, $2, $3)`, [QUEUE, 'noop', { i }]) },
    lib_statement: { run: (p, i, c) => p.query({ name: 'ins', text: c.statements.insertOne, values: [QUEUE, 'noop', JSON.stringify({ i }), 0, null, 0, null, null, null] }) },
    lib_batch_statement_no_notify: {
      run: (p, i, c) => p.query({ name: 'ins_nn', text: withoutNotify(c.statements.insert), values: [`[{"queue":"${QUEUE}","name":"noop","data":{"i":${i}},"priority":0,"delay_ms":0}]`] }),
    },
    add: { app: true },
    add_no_notify: { app: true, patch: patchInsert(withoutNotify) },
    add_notify_after_commit: { app: true, producer: 'notify_after_commit' },
    add_group_insert: { app: true, producer: 'producer_group_insert' },
  };
  const pick = arg('variants', Object.keys(variants).join(',')).split(',');
  for (const mode of String(arg('modes', 'seq,concurrent10')).split(',')) await measureVariants(mode, jobs, variants, pick);
}

async function bulkShapes() {
  const jobs = Number(arg('jobs', 20000));
  const chunk = (i) => Array.from({ length: 1000 }, (_, k) => i * 1000 + k);
  const batchJson = (i) =>
    `[${chunk(i).map((k) => `{"queue":"${QUEUE}","name":"noop","data":{"i":${k}},"priority":0,"run_at":null,"delay_ms":0,"max_attempts":null,"backoff":null,"timeout_ms":null}`).join(',')}]`;
  const variants = {
    raw_reference_values: {
      run: (p, i, c) => {
        const payloads = chunk(i).map((k) => JSON.stringify({ i: k }));
        return p.query(`INSERT INTO "${c.schema}".raw_jobs (payload) VALUES ${payloads.map((_, k) => `($${k + 1})`).join(',')}`, payloads);
      },
    },
    // The library's table, the reference's statement shape (3 columns, nothing returned).
    lib_table_values: {
      run: (p, i, c) => {
        const values = chunk(i).flatMap((k) => [QUEUE, 'noop', JSON.stringify({ i: k })]);
        return p.query(`INSERT INTO ${c.T} (queue, name, data) VALUES ${chunk(i).map((_, k) => `($${3 * k + 1}, $${3 * k + 2}, $${3 * k + 3})`).join(',')}`, values);
      },
    },
    // The INSERT statement addBulk used before COPY (and still uses for jobs with delays).
    lib_insert_statement: { run: (p, i, c) => p.query({ name: 'ins', text: c.statements.insert, values: [batchJson(i)] }) },
    // addBulk as shipped: COPY in pieces of COPY_PIECE_ROWS rows.
    addBulk: { app: true },
    addBulk_first_250: { app: true, constants: { COPY_FIRST_PIECE_ROWS: 250 } },
    addBulk_one_copy: { app: true, constants: { COPY_PIECE_ROWS: 1e9, COPY_FIRST_PIECE_ROWS: 1e9 } },
    addBulk_pieces_125: { app: true, constants: { COPY_PIECE_ROWS: 125 } },
    addBulk_pieces_500: { app: true, constants: { COPY_PIECE_ROWS: 500 } },
    addBulk_statements: { app: true, constants: { COPY_MIN_ROWS: Infinity } },
  };
  const pick = arg('variants', Object.keys(variants).join(',')).split(',');
  await measureVariants('bulk', jobs, variants, pick);

  // addBulk's JavaScript per job, without the database: validation and serialisation.
  const { QueueService } = lib;
  const svc = Object.create(QueueService.prototype);
  Object.assign(svc, { options: { defaultJobOptions: {} } });
  const list = Array.from({ length: 1000 }, (_, k) => ({ queue: QUEUE, name: 'noop', data: { i: k } }));
  const t = performance.now();
  for (let r = 0; r < 200; r++) list.map((j, k) => svc.toRow(j.queue, j.name, j.data, {}, `jobs[${k}].data`));
  out({ experiment: 'bulk:js_validate_1000', unit: 'ms per 1000 jobs', value: +((performance.now() - t) / 200).toFixed(3) });
}

async function drainTrace() {
  const jobs = Number(arg('jobs', 20000));
  // Sets of variants (bench/variants.mjs) separated by ';', variants within a set by '+'. The sets
  // are interleaved within each repetition so that drift on the machine hits them alike.
  const sets = String(arg('variants', 'none')).split(';').map((v) => (v === 'none' ? [] : v.split('+')));
  for (const concurrency of String(arg('concurrency', '200')).split(',').map(Number)) {
    const values = sets.map(() => []);
    for (let r = 0; r < REPS; r++) {
      for (const [k, variants] of sets.entries()) {
        const cpuProf = arg('cpu-prof');
        const execArgv = cpuProf ? ['--cpu-prof', `--cpu-prof-dir=${cpuProf}`] : undefined;
        const result = await drain({ jobs, concurrency, trace: true, analyze: !args.includes('--no-analyze'), variants, execArgv });
        values[k].push(result.jobsPerSec);
        if (args.includes('--verbose') || r === 0) {
          out({ experiment: `drain:c${concurrency}:${variants.join('+') || 'none'}:rep${r + 1}`, jobsPerSec: Math.round(result.jobsPerSec), ms: Math.round(result.ms), ...result.trace });
        }
      }
    }
    for (const [k, variants] of sets.entries()) {
      out({ experiment: `drain:c${concurrency}:${variants.join('+') || 'none'}`, unit: 'jobs/s', ...summarize(values[k]) });
    }
  }
}

/** Cross-process pickup latency, split into stages (NOTIFY delivery, wake-up, claim, dispatch). */
async function latencyTrace() {
  for (let r = 0; r < REPS; r++) {
    const busy = args.includes('--busy') ? { concurrency: Number(arg('busy-concurrency', 50)) } : undefined;
    const result = await latencyCrossProcess({ concurrency: Number(arg('concurrency', 100)), trace: true, busy });
    out({ experiment: `latency:rep${r + 1}`, p50: +result.p50.toFixed(2), p95: +result.p95.toFixed(2), p99: +result.p99.toFixed(2), ...result.stages });
  }
}

try {
  if (what === 'latency') await latencyTrace();
  else if (what === 'enqueue') await enqueueShapes();
  else if (what === 'bulk') await bulkShapes();
  else if (what === 'drain') await drainTrace();
  else throw new Error('usage: node bench/profile.mjs enqueue|bulk|drain [--jobs N] [--reps N]');
} catch (error) {
  log(`failed: ${error?.stack ?? error}`);
  await cleanup();
  process.exitCode = 1;
}
