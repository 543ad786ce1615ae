import { Client } from 'pg';
import { DATABASE_URL, sql } from './database';

/**
 * Sets a queue's effective limits straight in its registry row, as runtime overrides (what
 * `updateQueue()` writes): the workers' own declarations at boot (their processors declare none
 * here) rewrite `declared`, never `overrides`. `limits` is a jsonb object of the limit keys; a
 * key set to null means no limit.
 */
export async function setLimits(schema: string, queue: string, limits: object, more: object = {}): Promise<void> {
  await sql(
    `INSERT INTO "${schema}".queue_jobs_queues (name, overrides) VALUES ($1, $2::jsonb)
     ON CONFLICT (name) DO UPDATE SET overrides = EXCLUDED.overrides, updated_at = now()`,
    [queue, JSON.stringify({ ...limits, ...more })],
  );
}

/**
 * Inserts jobs with groups straight into the table (the `group` job option is the configuration
 * side's): one row per entry, in order, due now unless `runAt` is given. Returns the ids in order.
 */
export async function insertGrouped(schema: string, queue: string, jobs: { name: string; group: string | null; data?: unknown }[]): Promise<string[]> {
  const rows = await sql<{ id: string }>(
    `INSERT INTO "${schema}".queue_jobs (queue, name, data, group_key)
     SELECT $1, e.v ->> 'name', e.v -> 'data', e.v ->> 'group_key' FROM jsonb_array_elements($2::jsonb) WITH ORDINALITY AS e(v, o)
     ORDER BY e.o RETURNING id::text`,
    [queue, JSON.stringify(jobs.map((j) => ({ name: j.name, data: j.data ?? {}, group_key: j.group })))],
  );
  return rows.map((r) => r.id).sort((a, b) => Number(a) - Number(b));
}

export interface LimitSamples {
  /** How many samples were taken. */
  count: number;
  /** The most jobs of the queue seen active at once. */
  maxActive: number;
  /** The most jobs of one group seen active at once. */
  maxPerGroup: number;
  /** Per sample: active jobs of the queue (for what-happened-when checks). */
  series: { at: number; active: number }[];
}

/**
 * Samples a queue every `everyMs` from a connection of its own: active jobs, and active jobs of its
 * busiest group. `stop()` ends it and returns what it saw.
 */
export function sampleLimits(schema: string, queue: string, everyMs = 10): { stop(): Promise<LimitSamples> } {
  const client = new Client({ connectionString: DATABASE_URL });
  const samples: LimitSamples = { count: 0, maxActive: 0, maxPerGroup: 0, series: [] };
  let stopped = false;
  const loop = (async () => {
    await client.connect();
    while (!stopped) {
      const { rows } = await client.query<{ active: number; per_group: number | null }>(
        `SELECT (SELECT count(*)::int FROM "${schema}".queue_jobs WHERE queue = $1 AND state = 'active') AS active,
                (SELECT max(n)::int FROM (SELECT count(*) AS n FROM "${schema}".queue_jobs WHERE queue = $1 AND state = 'active' AND group_key IS NOT NULL GROUP BY group_key) g) AS per_group`,
        [queue],
      );
      const { active, per_group } = rows[0];
      samples.count++;
      samples.maxActive = Math.max(samples.maxActive, active);
      samples.maxPerGroup = Math.max(samples.maxPerGroup, per_group ?? 0);
      samples.series.push({ at: Date.now(), active });
      await new Promise((resolve) => setTimeout(resolve, everyMs));
    }
  })();
  return {
    async stop() {
      stopped = true;
      try {
        await loop;
      } finally {
        await client.end();
      }
      return samples;
    },
  };
}

/**
 * The most starts (the database's `started_at`) that any window of `perMs` holds, among the jobs of
 * `queue` (of one group each, when `perGroup`). Windows are half-open, [t, t + perMs)
 * (timestamps have microseconds: the frame ends 1 µs before t + perMs).
 */
export async function busiestWindow(schema: string, queue: string, perMs: number, perGroup = false): Promise<number> {
  const [{ most }] = await sql<{ most: number | null }>(
    `SELECT max(n)::int AS most FROM (
       SELECT count(*) OVER (PARTITION BY ${perGroup ? 'group_key' : 'true'} ORDER BY started_at RANGE BETWEEN CURRENT ROW AND ($2 * interval '1 millisecond' - interval '1 microsecond') FOLLOWING) AS n
       FROM "${schema}".queue_jobs WHERE queue = $1 AND started_at IS NOT NULL) w`,
    [queue, perMs],
  );
  return most ?? 0;
}
