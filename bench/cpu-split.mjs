#!/usr/bin/env node
// Where the time of an insert goes: wall time, this process's CPU and PostgreSQL's CPU per job, for
// the library's add()/addBulk() and for the raw reference's statements, interleaved. Diagnostics
// behind bench/README.md; not part of `npm run bench`. Run `npm run build` first.
//
//   node bench/cpu-split.mjs [--jobs 4000] [--bulk-jobs 40000] [--reps 7] [--variants raw_insert,add,raw_bulk,add_bulk]
//
// Client CPU is process.cpuUsage() (every thread of this process, the garbage collector's too);
// server CPU is the utime+stime of every process whose name starts with "postgres" (backends,
// WAL writer, checkpointer, autovacuum) read from /proc, so it needs the database on this machine.
// /proc counts in ticks of 10 ms: run enough jobs that a variant takes a few hundred ms.
import { DATABASE_URL, QUEUE, createBenchApp, dropSchema, newSchema, now, pg, postgresCpuMs, sql } from './common.mjs';

const args = process.argv.slice(2);
const arg = (name, dflt) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && i + 1 < args.length ? args[i + 1] : dflt;
};
const JOBS = Number(arg('jobs', 4000));
const BULK_JOBS = Number(arg('bulk-jobs', 40000));
const REPS = Number(arg('reps', 7));
const RAW_TABLE = (schema) => `CREATE TABLE "${schema}".raw_jobs (
  id bigserial PRIMARY KEY, payload jsonb NOT NULL, status text NOT NULL DEFAULT 'pending',
  attempts int NOT NULL DEFAULT 0, created_at timestamptz NOT NULL DEFAULT now(),
  locked_at timestamptz, finished_at timestamptz);
  CREATE INDEX ON "${schema}".raw_jobs (id) WHERE status = 'pending'`;

/** Each variant: set up in `schema`, then `run(i)` inserts `perCall` jobs; `close()` tears down. */
const VARIANTS = {
  // The reference's enqueue_seq statement.
  raw_insert: async (schema) => {
    await sql(RAW_TABLE(schema));
    const pool = new pg.Pool({ connectionString: DATABASE_URL, max: 10 });
    return { perCall: 1, run: (i) => pool.query(`INSERT INTO "${schema}".raw_jobs (payload) VALUES ($1)`, [{ i }]), close: () => pool.end() };
  },
  add: async (schema) => {
    const { app, queue } = await createBenchApp({ schema });
    return { perCall: 1, run: (i) => queue.add(QUEUE, 'noop', { i }), close: () => app.close() };
  },
  // The reference's enqueue_bulk statement: a 1,000-row INSERT.
  raw_bulk: async (schema) => {
    await sql(RAW_TABLE(schema));
    const pool = new pg.Pool({ connectionString: DATABASE_URL, max: 10 });
    const values = Array.from({ length: 1000 }, (_, k) => `($${k + 1})`).join(',');
    return {
      perCall: 1000,
      run: (i) => pool.query(`INSERT INTO "${schema}".raw_jobs (payload) VALUES ${values}`, Array.from({ length: 1000 }, (_, k) => JSON.stringify({ i: i * 1000 + k }))),
      close: () => pool.end(),
    };
  },
  add_bulk: async (schema) => {
    const { app, queue } = await createBenchApp({ schema });
    return {
      perCall: 1000,
      run: (i) => queue.addBulk(Array.from({ length: 1000 }, (_, k) => ({ queue: QUEUE, name: 'noop', data: { i: i * 1000 + k } }))),
      close: () => app.close(),
    };
  },
};

const names = String(arg('variants', Object.keys(VARIANTS).join(','))).split(',');
const results = Object.fromEntries(names.map((n) => [n, []]));
for (let rep = 0; rep < REPS; rep++) {
  for (const name of names) {
    if (!VARIANTS[name]) throw new Error(`unknown variant ${name}; known: ${Object.keys(VARIANTS).join(', ')}`);
    const schema = newSchema('cpu');
    await sql(`CREATE SCHEMA "${schema}"`);
    try {
      const variant = await VARIANTS[name](schema);
      try {
        const calls = Math.max(1, Math.round((variant.perCall > 1 ? BULK_JOBS : JOBS) / variant.perCall));
        for (let i = 0; i < Math.min(calls, 200); i++) await variant.run(i); // warm-up: plans, JIT (the table grows by as much)
        const cpu0 = process.cpuUsage();
        const server0 = postgresCpuMs();
        const t0 = now();
        for (let i = 0; i < calls; i++) await variant.run(i);
        const wallMs = now() - t0;
        const serverMs = postgresCpuMs() - server0;
        const cpu = process.cpuUsage(cpu0);
        const jobs = calls * variant.perCall;
        results[name].push({ wall: (wallMs * 1000) / jobs, client: (cpu.user + cpu.system) / jobs, server: (serverMs * 1000) / jobs });
      } finally {
        await variant.close();
      }
    } finally {
      await dropSchema(schema);
    }
  }
}

const median = (values) => {
  const s = [...values].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
for (const name of names) {
  const r = results[name];
  const m = (key) => +median(r.map((x) => x[key])).toFixed(2);
  console.log(JSON.stringify({ variant: name, unit: 'µs per job', wall: m('wall'), clientCpu: m('client'), serverCpu: m('server'), reps: r.length }));
}
