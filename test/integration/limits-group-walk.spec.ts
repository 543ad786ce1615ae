import type { INestApplicationContext } from '@nestjs/common';
import { Client } from 'pg';
import { createTestApp } from './helpers/app';
import { DATABASE_URL, dropSchema, sql, uniqueSchema } from './helpers/database';
import { insertGrouped, setLimits } from './helpers/limits';
import { waitFor } from './helpers/wait-for';

// The limited claim's walk over a queue's groups, called as SQL (the function the workers call),
// one claim at a time, so each claim's answer can be checked exactly: which groups it served, in
// what order, where the next claim goes on (the round-robin cursor), the walk's cap, and a group
// whose first job is taken away while the claim waits for it.
const schema = uniqueSchema('walk');
const T = `"${schema}".queue_jobs`;

interface Claimed {
  ids: string[];
  groups: string[];
  more: boolean;
}

/** One limited claim of up to `limit` jobs of `queue` by worker `worker`, on `client` or its own connection. */
async function claim(queue: string, limit: number, client?: Client): Promise<Claimed> {
  const text = `SELECT c.out_id::text AS id, c.out_group_key AS g, c.out_more AS more
    FROM "${schema}".queue_jobs_claim_limited($1, $2, 'walker', 60000, 3, NULL, NULL) AS c`;
  const rows = (client ? (await client.query(text, [queue, limit])).rows : await sql(text, [queue, limit])) as { id: string | null; g: string | null; more: boolean | null }[];
  const jobs = rows.filter((r) => r.id !== null).sort((a, b) => Number(a.id) - Number(b.id));
  return { ids: jobs.map((r) => r.id!), groups: [...new Set(jobs.map((r) => r.g!))].sort(), more: rows[rows.length - 1].more === true };
}

const byId = (ids: string[]) => [...ids].sort((a, b) => Number(a) - Number(b));
const cursorOf = async (queue: string) => (await sql<{ c: string | null }>(`SELECT group_cursor AS c FROM "${schema}".queue_jobs_queues WHERE name = $1`, [queue]))[0].c;

/** `n` groups named `<prefix>000`, `<prefix>001`, ... with `perGroup` pending jobs each; ids by group. */
async function groups(queue: string, prefix: string, n: number, perGroup: number): Promise<Map<string, string[]>> {
  const names = Array.from({ length: n }, (_, i) => `${prefix}${String(i).padStart(3, '0')}`);
  const ids = await insertGrouped(schema, queue, names.flatMap((g) => Array.from({ length: perGroup }, () => ({ name: 'x', group: g }))));
  const rows = await sql<{ id: string; g: string }>(`SELECT id::text, group_key AS g FROM ${T} WHERE id = ANY($1::bigint[]) ORDER BY id`, [ids]);
  const byGroup = new Map<string, string[]>(names.map((name) => [name, []]));
  for (const r of rows) byGroup.get(r.g)!.push(r.id);
  return byGroup;
}

/** Makes jobs active under limits, held by another worker (as if it had claimed them). */
const holdElsewhere = (ids: string[]) =>
  sql(
    `UPDATE ${T} SET state = 'active', limits_held = true, locked_by = 'other', locked_until = now() + interval '1 hour',
       started_at = now(), attempts = 1, claims = 1 WHERE id = ANY($1::bigint[])`,
    [ids],
  );
const complete = (ids: string[]) =>
  sql(`UPDATE ${T} SET state = 'completed', finished_at = now(), locked_by = NULL, locked_until = NULL WHERE id = ANY($1::bigint[])`, [ids]);

describe('the limited claim walks the groups round robin', () => {
  let app: INestApplicationContext;
  beforeAll(async () => {
    app = await createTestApp({ schema, queue: { worker: false } });
  });
  afterAll(async () => {
    await app.close();
    await dropSchema(schema);
  });

  it('gives each group at most its free slots, goes on after the group the last claim ended on, and wraps once round', async () => {
    await setLimits(schema, 'rr', { groupConcurrency: 2 });
    const g = await groups('rr', 'g', 5, 3);
    const [a, b, c, d, e] = ['g000', 'g001', 'g002', 'g003', 'g004'].map((k) => g.get(k)!);

    expect(await claim('rr', 4)).toEqual({ ids: [...a.slice(0, 2), ...b.slice(0, 2)], groups: ['g000', 'g001'], more: true });
    expect(await cursorOf('rr')).toBe('g001');
    // One slot left for g003 (its first job, the head taken by primary key).
    expect(await claim('rr', 3)).toEqual({ ids: [...c.slice(0, 2), d[0]], groups: ['g002', 'g003'], more: true });
    expect(await cursorOf('rr')).toBe('g003');
    // g004, then round to g000..g003, whose slots are taken but for g003's second; it stops where it began.
    expect(await claim('rr', 10)).toEqual({ ids: byId([d[1], ...e.slice(0, 2)]), groups: ['g003', 'g004'], more: false });
    expect(await cursorOf('rr')).toBe('g003');
    // Slots free again only where jobs ended.
    await complete(a.slice(0, 2));
    expect(await claim('rr', 10)).toEqual({ ids: [a[2]], groups: ['g000'], more: false });
  });

  it('walks on past groups whose slots are all taken, over several batches of the walk', async () => {
    await setLimits(schema, 'busy', { groupConcurrency: 1 });
    const g = await groups('busy', 'b', 40, 2);
    // Two groups of every three busy: 10 free groups are 30 groups into the walk.
    const keys = [...g.keys()];
    const free = keys.filter((_, i) => i % 3 === 2);
    await holdElsewhere(keys.filter((_, i) => i % 3 !== 2).map((k) => g.get(k)![0]));
    const got = await claim('busy', 10);
    expect(got.groups).toEqual(free.slice(0, 10));
    expect(got.ids).toEqual(free.slice(0, 10).map((k) => g.get(k)![0]));
    expect(await cursorOf('busy')).toBe(free[9]);
    // The next claim goes on from there: the last 3 free groups, then round to where it began.
    expect(await claim('busy', 10)).toEqual({ ids: free.slice(10).map((k) => g.get(k)![0]), groups: free.slice(10), more: false });
  });

  it('examines at most 256 groups a claim, says there may be more, and the next claim goes on from there', async () => {
    await setLimits(schema, 'cap', { groupConcurrency: 1 });
    const g = await groups('cap', 'c', 300, 2);
    const keys = [...g.keys()];
    await holdElsewhere(keys.map((k) => g.get(k)![0]));
    expect(await claim('cap', 5)).toEqual({ ids: [], groups: [], more: true });
    expect(await cursorOf('cap')).toBe(keys[255]);
    // A slot frees in a group the first claim did not reach, and one in a group it did.
    await complete([g.get(keys[280])![0], g.get(keys[10])![0]]);
    // From c256 to the end, then round from c000: it finds both, and stops again after 256 groups.
    expect(await claim('cap', 5)).toEqual({ ids: [g.get(keys[10])![1], g.get(keys[280])![1]], groups: [keys[10], keys[280]], more: true });
    expect(await cursorOf('cap')).toBe(keys[211]);
  });

  it("takes a group's due job in claim order when its first job is not due yet", async () => {
    await setLimits(schema, 'due', { groupConcurrency: 1 });
    const [later, now] = await insertGrouped(schema, 'due', [
      { name: 'x', group: 'a' },
      { name: 'x', group: 'a' },
    ]);
    await sql(`UPDATE ${T} SET priority = 10, run_at = now() + interval '1 hour' WHERE id = $1`, [later]);
    expect((await claim('due', 5)).ids).toEqual([now]);
  });

  it("waits for a group's first job held by another transaction: takes it if it is still pending, else the group's next", async () => {
    await setLimits(schema, 'held', { groupConcurrency: 1 });
    const [a1, a2, b1] = await insertGrouped(schema, 'held', [
      { name: 'x', group: 'a' },
      { name: 'x', group: 'a' },
      { name: 'x', group: 'b' },
    ]);
    const holder = new Client({ connectionString: DATABASE_URL });
    const claimer = new Client({ connectionString: DATABASE_URL });
    await holder.connect();
    await claimer.connect();
    try {
      const claimerPid = (await claimer.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0].pid;
      const blocked = () =>
        waitFor('the claim to wait for the held job', async () => (await sql<{ w: string | null }>(`SELECT wait_event_type AS w FROM pg_stat_activity WHERE pid = $1`, [claimerPid]))[0]?.w === 'Lock');

      // Held and let go unchanged: the claim takes it.
      await holder.query('BEGIN');
      await holder.query(`SELECT id FROM ${T} WHERE id = $1 FOR UPDATE`, [a1]);
      let pending = claim('held', 5, claimer);
      await blocked();
      await holder.query('ROLLBACK');
      expect((await pending).ids).toEqual([a1, b1]);

      // Held and cancelled: the claim gives the group's turn to its next job.
      await complete([a1, b1]);
      const [a3] = await insertGrouped(schema, 'held', [{ name: 'x', group: 'a' }]);
      await holder.query('BEGIN');
      await holder.query(`UPDATE ${T} SET state = 'cancelled', finished_at = now() WHERE id = $1`, [a2]);
      pending = claim('held', 5, claimer);
      await blocked();
      await holder.query('COMMIT');
      expect((await pending).ids).toEqual([a3]);
    } finally {
      await holder.end();
      await claimer.end();
    }
  });
});
