#!/usr/bin/env node
// What the flow trigger (schema step 5) costs jobs that use no flow: the `complete` statement on two
// migrated tables, the trigger dropped from one, in interleaved batches of 1,000 completions of
// ordinary jobs (has_dependents NULL, so only the trigger's WHEN clause runs). Diagnostics behind
// docs/flows.md; not part of `npm run bench`. Run `npm run build` first.
//
//   node bench/flow-trigger-cost.mjs [--batches 200]
import path from 'node:path';
import { DATABASE_URL, ROOT, dropSchema, newSchema, pg, require } from './common.mjs';

const args = process.argv.slice(2);
const at = args.indexOf('--batches');
const BATCHES = at >= 0 ? Number(args[at + 1]) : 200;
const BATCH = 1000;
const { buildJobStatements } = require(path.join(ROOT, 'dist/lib/database/sql/job.statements.js'));
const { SCHEMA_STEPS } = require(path.join(ROOT, 'dist/lib/database/migrations/job-table.ddl.js'));
const { createTableNaming } = require(path.join(ROOT, 'dist/lib/database/table-naming.js'));

const client = new pg.Client({ connectionString: DATABASE_URL });
await client.connect();
const variants = { trigger: createTableNaming(newSchema('trg')), none: createTableNaming(newSchema('notrg')) };
try {
  const ids = {};
  for (const [variant, n] of Object.entries(variants)) {
    for (const step of SCHEMA_STEPS) for (const statement of step.up(n)) await client.query(statement);
    if (variant === 'none') await client.query(`DROP TRIGGER "${n.prefix}_settle_dependents" ON ${n.qualified}`);
    await client.query(
      `INSERT INTO ${n.qualified} (queue, name, data, state, claims, attempts, locked_by, locked_until, started_at)
       SELECT 'q', 'n', '{}', 'active', 1, 1, 'w', now() + interval '1 hour', now() FROM generate_series(1, ${BATCH * BATCHES})`,
    );
    await client.query(`VACUUM ANALYZE ${n.qualified}`);
    ids[variant] = (await client.query(`SELECT id::text FROM ${n.qualified} ORDER BY id`)).rows.map((r) => r.id);
  }
  const statements = Object.fromEntries(Object.entries(variants).map(([variant, n]) => [variant, buildJobStatements(n).complete]));
  const spent = { trigger: 0n, none: 0n };
  for (let b = 0; b < BATCHES; b++) {
    // NOTE: alternating which goes first, so neither always runs on a warmer cache.
    for (const variant of b % 2 ? ['trigger', 'none'] : ['none', 'trigger']) {
      const slice = ids[variant].slice(b * BATCH, (b + 1) * BATCH);
      const started = process.hrtime.bigint();
      const { rows } = await client.query(statements[variant], [`{${slice.join(',')}}`, `{${slice.map(() => 1).join(',')}}`, null, 'w']);
      spent[variant] += process.hrtime.bigint() - started;
      if (rows[0].ids.split(',').length !== BATCH) throw new Error(`${variant}: not every completion was written`);
    }
  }
  const perJob = (variant) => Number(spent[variant]) / 1e3 / (BATCH * BATCHES);
  console.log(JSON.stringify({ metric: 'complete', unit: 'µs/job', trigger: +perJob('trigger').toFixed(2), none: +perJob('none').toFixed(2), ratio: +(perJob('trigger') / perJob('none')).toFixed(3), batches: BATCHES }));
} finally {
  for (const n of Object.values(variants)) await dropSchema(n.schema);
  await client.end();
}
