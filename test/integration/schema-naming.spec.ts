import type { INestApplicationContext } from '@nestjs/common';
import { QueueService } from '../../lib';
import { SCHEMA_STEPS, schemaVersionComment, writeSchemaVersion } from '../../lib/database/migrations/job-table.ddl';
import { createTableNaming, type TableNaming } from '../../lib/database/table-naming';
import { createTestApp } from './helpers/app';
import { dropSchema, sql, uniqueSchema } from './helpers/database';

// Index and constraint names share a schema's namespace. Table names longer than 40 characters used
// to be cut to 40 for them, so two tables sharing their first 40 characters shared index names and
// the second one silently got no index at all.
const schema = uniqueSchema('naming');
const base = 'tenant_background_jobs_for_the_reporting_service'; // 48 characters
const first = `${base}_a`;
const second = `${base}_b`;
const LATEST = SCHEMA_STEPS[SCHEMA_STEPS.length - 1].version;

const indexesOf = async (table: string) =>
  (
    await sql<{ indexname: string }>(`SELECT indexname FROM pg_indexes WHERE schemaname = $1 AND tablename = $2 ORDER BY indexname`, [schema, table])
  ).map((r) => r.indexname);

const versionOf = async (n: TableNaming) =>
  (
    await sql<{ comment: string }>(
      `SELECT obj_description(oid, 'pg_constraint') AS comment FROM pg_constraint WHERE conrelid = to_regclass($1) AND contype = 'c'`,
      [n.qualified],
    )
  )[0]?.comment;

describe('index and constraint names of long table names', () => {
  const apps: INestApplicationContext[] = [];
  const boot = async (tableName: string) => {
    const app = await createTestApp({ schema, queue: { tableName, worker: false } });
    apps.push(app);
    return app;
  };

  afterAll(async () => {
    for (const app of apps) await app.close();
    await dropSchema(schema);
  });

  it('gives two tables that share their first 40 characters indexes of their own', async () => {
    await boot(first);
    await boot(second);
    for (const table of [first, second]) {
      const n = createTableNaming(schema, table);
      expect(await indexesOf(table)).toEqual(
        [`${n.prefix}_claim_hash_idx`, `${n.prefix}_finished_idx`, `${n.prefix}_lease_idx`, `${n.prefix}_unique_idx`, `${table}_pkey`, `${n.prefix}_schedule_slot_idx`, `${n.prefix}_parent_idx`, `${n.prefix}_dead_id_idx`, `${n.prefix}_dead_idx`, `${n.prefix}_group_pending_idx`, `${n.prefix}_limits_active_idx`].sort(),
      );
      expect(await versionOf(n)).toBe(schemaVersionComment(LATEST));
    }
    // Both work: a job in each, counted apart.
    const [a, b] = apps.map((app) => app.get(QueueService));
    await a.add('q', 'n', {});
    expect((await b.getCounts('q')).pending).toBe(0);
    expect((await a.getCounts('q')).pending).toBe(1);
  });

  it('upgrades tables an earlier release named with the cut prefix, the one that lost its indexes included', async () => {
    // As release 0.1 left them: the first table with every object under the 40-character prefix,
    // the second (same first 40 characters) with its constraint but none of its indexes.
    const legacy = (table: string): TableNaming => ({ ...createTableNaming(schema, table), prefix: table.slice(0, 40), legacyPrefix: undefined });
    const [old1, old2] = [`${base}_c`, `${base}_d`].map(legacy);
    for (const n of [old1, old2]) {
      for (const step of SCHEMA_STEPS.filter((s) => s.version <= 2)) for (const statement of step.up(n)) await sql(statement);
      await sql(writeSchemaVersion(n, 2));
    }
    await sql(`INSERT INTO ${old1.qualified} (queue, name) VALUES ('q', 'kept')`);
    expect(await indexesOf(old1.table)).toHaveLength(4);
    expect(await indexesOf(old2.table)).toEqual([`${old2.table}_pkey`]);

    for (const n of [old1, old2]) {
      const app = await boot(n.table);
      const current = createTableNaming(schema, n.table);
      expect(await indexesOf(n.table)).toEqual(
        [`${current.prefix}_claim_hash_idx`, `${current.prefix}_finished_idx`, `${current.prefix}_lease_idx`, `${current.prefix}_unique_idx`, `${n.table}_pkey`, `${current.prefix}_schedule_slot_idx`, `${current.prefix}_parent_idx`, `${current.prefix}_dead_id_idx`, `${current.prefix}_dead_idx`, `${current.prefix}_group_pending_idx`, `${current.prefix}_limits_active_idx`].sort(),
      );
      expect(await versionOf(current)).toBe(schemaVersionComment(LATEST));
      if (n === old1) expect((await app.get(QueueService).getCounts('q')).pending).toBe(1);
    }
  });
});
