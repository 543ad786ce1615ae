import type { INestApplicationContext } from '@nestjs/common';
import { Handle, JobState, Processor, QueueService, type Job } from '../../lib';
import { SCHEMA_STEPS, schemaVersionComment, writeSchemaVersion } from '../../lib/database/migrations/job-table.ddl';
import { createTableNaming } from '../../lib/database/table-naming';
import { createTestApp } from './helpers/app';
import { dropSchema, sql, uniqueSchema } from './helpers/database';
import { waitForJobState } from './helpers/jobs';

// A table created by an earlier release (schema version 1) is brought up to date at boot, with the
// jobs it holds, and they run.
const schema = uniqueSchema('upgrade');
const naming = createTableNaming(schema);

@Processor('upgrade')
class UpgradeProcessor {
  @Handle()
  run(job: Job<{ i: number }>) {
    return job.data.i;
  }
}

const indexes = async () =>
  (await sql<{ indexname: string }>(`SELECT indexname FROM pg_indexes WHERE schemaname = $1 ORDER BY indexname`, [schema])).map((r) => r.indexname);

describe('schema upgrades', () => {
  let app: INestApplicationContext | undefined;

  afterAll(async () => {
    await app?.close();
    await dropSchema(schema);
  });

  it('upgrades a version 1 table at boot, keeping its jobs', async () => {
    const v1 = SCHEMA_STEPS.find((s) => s.version === 1)!;
    for (const statement of v1.up(naming)) await sql(statement);
    await sql(writeSchemaVersion(naming, 1));
    await sql(`INSERT INTO ${naming.qualified} (queue, name, data) SELECT 'upgrade', 'n', jsonb_build_object('i', g) FROM generate_series(1, 50) g`);
    expect(await indexes()).toContain('queue_jobs_claim_idx');

    app = await createTestApp({ schema, providers: [UpgradeProcessor], queue: { worker: { pollIntervalMs: 50 } } });

    const [{ comment }] = await sql<{ comment: string }>(
      `SELECT obj_description(oid, 'pg_constraint') AS comment FROM pg_constraint WHERE conname = 'queue_jobs_state_check' AND conrelid = to_regclass($1)`,
      [naming.qualified],
    );
    expect(comment).toBe(schemaVersionComment(SCHEMA_STEPS[SCHEMA_STEPS.length - 1].version));
    expect(await indexes()).toEqual([
      'queue_jobs_claim_hash_idx',
      'queue_jobs_dead_id_idx',
      'queue_jobs_dead_idx',
      'queue_jobs_deps_on_idx',
      'queue_jobs_deps_pkey',
      'queue_jobs_finished_idx',
      'queue_jobs_group_pending_idx',
      'queue_jobs_groups_pkey',
      'queue_jobs_lease_idx',
      'queue_jobs_limits_active_idx',
      'queue_jobs_logs_job_idx',
      'queue_jobs_logs_pkey',
      'queue_jobs_parent_idx',
      'queue_jobs_permits_pkey',
      'queue_jobs_pkey',
      'queue_jobs_queues_pkey',
      'queue_jobs_schedule_slot_idx',
      'queue_jobs_schedules_due_idx',
      'queue_jobs_schedules_pkey',
      'queue_jobs_stats_minute_idx',
      'queue_jobs_stats_pkey',
      'queue_jobs_unique_idx',
      'queue_jobs_workers_pkey',
    ]);
    const queue = app.get(QueueService);
    const ids = (await sql<{ id: string }>(`SELECT id::text FROM ${naming.qualified}`)).map((r) => r.id);
    for (const id of ids) await waitForJobState(queue, id, JobState.Completed);
  });
});
