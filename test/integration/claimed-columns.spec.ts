import type { INestApplicationContext } from '@nestjs/common';
import { Client } from 'pg';
import { createTableNaming } from '../../lib/database/table-naming';
import { CLAIMED_COLUMN_COUNT, buildJobStatements } from '../../lib/database/sql/job.statements';
import { QueueDatabase } from '../../lib/database/queue-database';
import { QueueService } from '../../lib';
import { createTestApp } from './helpers/app';
import { DATABASE_URL, dropSchema, uniqueSchema } from './helpers/database';

const schema = uniqueSchema('claimed_cols');

/** The claim's rows are read by position: the count the reader relies on is the statements' own. */
describe('claimed columns', () => {
  let app: INestApplicationContext;
  let client: Client;

  beforeAll(async () => {
    app = await createTestApp({ schema, queue: { worker: false } });
    client = new Client({ connectionString: DATABASE_URL });
    await client.connect();
  });
  afterAll(async () => {
    await client?.end();
    await app?.close();
    await dropSchema(schema);
  });

  it('every claim statement returns CLAIMED_COLUMN_COUNT job columns, the traced ones the trace context right after', async () => {
    const s = buildJobStatements(createTableNaming(schema));
    const params = ['nothing-here', 10, 'w', 1000, 1, '{"type":"fixed","delayMs":0}', null];
    await client.query('BEGIN');
    try {
      const plain = await client.query({ text: s.claim, values: params, rowMode: 'array' });
      const traced = await client.query({ text: s.claimTraced, values: params, rowMode: 'array' });
      expect(plain.fields).toHaveLength(CLAIMED_COLUMN_COUNT);
      expect(traced.fields).toHaveLength(CLAIMED_COLUMN_COUNT + 1);
      expect(traced.fields[CLAIMED_COLUMN_COUNT].name).toBe('trace_context');
      const limited = await client.query({ text: s.claimLimited, values: params, rowMode: 'array' });
      const limitedTraced = await client.query({ text: s.claimLimitedTraced, values: params, rowMode: 'array' });
      expect(limited.fields).toHaveLength(CLAIMED_COLUMN_COUNT + 5);
      expect(limitedTraced.fields).toHaveLength(CLAIMED_COLUMN_COUNT + 6);
      expect(limitedTraced.fields[CLAIMED_COLUMN_COUNT].name).toBe('trace_context');
      expect(limited.fields.slice(CLAIMED_COLUMN_COUNT).map((f) => f.name)).toEqual(['out_wait_ms', 'out_more', 'out_limited', 'out_full', 'out_permits']);
      // The limited claim carrying completions: the claim's columns, its five hints, the ids written.
      const withCompletions = [...params, '{}', '{}', null];
      const combined = await client.query({ text: s.completeAndClaimLimited, values: withCompletions, rowMode: 'array' });
      const combinedTraced = await client.query({ text: s.completeAndClaimLimitedTraced, values: withCompletions, rowMode: 'array' });
      expect(combined.fields).toHaveLength(CLAIMED_COLUMN_COUNT + 6);
      expect(combinedTraced.fields).toHaveLength(CLAIMED_COLUMN_COUNT + 7);
      expect(combinedTraced.fields[CLAIMED_COLUMN_COUNT].name).toBe('trace_context');
      expect(combined.fields[CLAIMED_COLUMN_COUNT + 5].name).toBe('out_written');
      // The permitted claim: the claim's columns, then the permit, the block and the ids written.
      const permitted = await client.query({ text: s.completeAndClaimPermitted, values: withCompletions, rowMode: 'array' });
      const permittedTraced = await client.query({ text: s.completeAndClaimPermittedTraced, values: withCompletions, rowMode: 'array' });
      expect(permitted.fields.slice(CLAIMED_COLUMN_COUNT).map((f) => f.name)).toEqual(['permit_slots', 'wait_ms', 'written']);
      expect(permittedTraced.fields).toHaveLength(CLAIMED_COLUMN_COUNT + 4);
      expect(permittedTraced.fields[CLAIMED_COLUMN_COUNT].name).toBe('trace_context');
    } finally {
      await client.query('ROLLBACK');
    }
  });

  it('a claim hands its jobs over in claim order (priority, run time, id), not the order the update visited them', async () => {
    const queue = app.get(QueueService);
    const repository = await app.get(QueueDatabase).getRepository();
    // Ids ascending against claim order: the update visits them by primary key, lowest id first.
    const added = await queue.addBulk([
      { queue: 'order', name: 'low', data: {}, options: { priority: 0, runAt: new Date(Date.now() - 1000) } },
      { queue: 'order', name: 'low-older', data: {}, options: { priority: 0, runAt: new Date(Date.now() - 2000) } },
      { queue: 'order', name: 'high', data: {}, options: { priority: 10 } },
      { queue: 'order', name: 'mid', data: {}, options: { priority: 5 } },
    ]);
    expect(added.map((j) => j.name)).toEqual(['low', 'low-older', 'high', 'mid']);
    const defaults = { maxAttempts: 1, backoff: { type: 'fixed' as const, delayMs: 0 }, timeoutMs: null };
    const claimed = await repository.claim('order', 10, 'w', 1000, defaults);
    expect(claimed.map((j) => j.name)).toEqual(['high', 'mid', 'low-older', 'low']);
  });
});
