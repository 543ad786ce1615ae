import type { INestApplicationContext } from '@nestjs/common';
import { QueueService } from '../../lib';
import { createTestApp } from './helpers/app';
import { dropSchema, sql, uniqueSchema } from './helpers/database';
import { waitFor } from './helpers/wait-for';

const schema = uniqueSchema('ret');

describe('retention', () => {
  let producer: INestApplicationContext;
  let worker: INestApplicationContext | undefined;

  beforeAll(async () => {
    producer = await createTestApp({ schema, queue: { worker: false } });
  });

  afterAll(async () => {
    await worker?.close();
    await producer?.close();
    await dropSchema(schema);
  });

  it('deletes finished jobs older than retentionMs and keeps everything else', async () => {
    const queue = producer.get(QueueService);
    const jobs = await queue.addBulk(Array.from({ length: 8 }, (_, i) => ({ queue: 'r', name: 'n', data: { i } })));
    const ids = jobs.map((j) => j.id);
    const Q = `"${schema}".queue_jobs`;
    // Old finished jobs in every final state, a recent one, and old unfinished ones.
    await sql(`UPDATE ${Q} SET state = 'completed', finished_at = now() - interval '2 hours' WHERE id = ANY($1::bigint[])`, [ids.slice(0, 2)]);
    await sql(`UPDATE ${Q} SET state = 'failed', finished_at = now() - interval '2 hours' WHERE id = $1`, [ids[2]]);
    await sql(`UPDATE ${Q} SET state = 'cancelled', finished_at = now() - interval '2 hours' WHERE id = $1`, [ids[3]]);
    await sql(`UPDATE ${Q} SET state = 'completed', finished_at = now() - interval '10 minutes' WHERE id = $1`, [ids[4]]);
    await sql(`UPDATE ${Q} SET created_at = now() - interval '2 hours' WHERE id = ANY($1::bigint[])`, [ids.slice(5)]);

    worker = await createTestApp({ schema, queue: { retentionMs: 60 * 60 * 1000, worker: { pollIntervalMs: 50 } } });
    await waitFor('old finished jobs deleted', async () => (await sql(`SELECT id FROM ${Q} WHERE id = ANY($1::bigint[])`, [ids.slice(0, 4)])).length === 0);
    const left = await sql<{ id: string }>(`SELECT id FROM ${Q} ORDER BY id`);
    expect(left.map((r) => r.id)).toEqual(ids.slice(4));
  });
});
