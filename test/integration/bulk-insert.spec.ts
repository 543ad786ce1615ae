import type { INestApplicationContext } from '@nestjs/common';
import { Handle, InvalidJobDataError, JobState, Processor, QueueService, type BulkJob, type Job } from '../../lib';
import { BULK_CHUNK_SIZE, COPY_MIN_ROWS, COPY_PIECE_ROWS } from '../../lib/queue.constants';
import { createTestApp } from './helpers/app';
import { dropSchema, sql, uniqueSchema } from './helpers/database';
import { waitFor } from './helpers/wait-for';

// addBulk has two paths: COPY (COPY_MIN_ROWS jobs and up, no delays) and statements (fewer jobs,
// or any delay). Both must store every job exactly as returned, all or nothing.
const schema = uniqueSchema('bulk');
const table = `"${schema}".queue_jobs`;
/** Long enough that a job picked up within the test's bounds was not found by polling. */
const NO_POLL = 600_000;
const started = new Map<string, number>();

@Processor('bulk-wake', { concurrency: 50 })
class WakeProcessor {
  @Handle()
  run(job: Job) {
    started.set(job.id, Date.now());
  }
}

interface StoredRow {
  id: string;
  queue: string;
  name: string;
  data: unknown;
  priority: number;
  run_at_ms: number;
  max_attempts: number | null;
  backoff: unknown;
  timeout_ms: number | null;
  state: string;
}

const storedRows = async (where = 'true') =>
  new Map(
    (
      await sql<StoredRow>(
        `SELECT id::text, queue, name, data, priority, floor(extract(epoch FROM run_at) * 1000)::float8 AS run_at_ms,
                max_attempts, backoff, timeout_ms, state
         FROM ${table} WHERE ${where}`,
      )
    ).map((r) => [r.id, r]),
  );
const count = async () => (await sql<{ n: number }>(`SELECT count(*)::int AS n FROM ${table}`))[0].n;

/** Every returned job is stored under its id with exactly what addBulk said it stored. */
function expectStoredAsReturned(jobs: Job[], rows: Map<string, StoredRow>) {
  expect(new Set(jobs.map((j) => j.id)).size).toBe(jobs.length);
  for (const job of jobs) {
    const row = rows.get(job.id);
    expect(row).toBeDefined();
    expect({ queue: row!.queue, name: row!.name, data: row!.data, priority: row!.priority, runAt: row!.run_at_ms }).toEqual({
      queue: job.queue,
      name: job.name,
      data: job.data,
      priority: job.priority,
      runAt: job.runAt.getTime(),
    });
    expect({ maxAttempts: row!.max_attempts, backoff: row!.backoff, timeoutMs: row!.timeout_ms, state: row!.state }).toEqual({
      maxAttempts: job.maxAttempts,
      backoff: job.backoff,
      timeoutMs: job.timeoutMs,
      state: JobState.Pending,
    });
  }
}

describe('addBulk', () => {
  let app: INestApplicationContext;
  let queue: QueueService;
  const others: INestApplicationContext[] = [];

  beforeAll(async () => {
    app = await createTestApp({ schema, queue: { worker: false } });
    queue = app.get(QueueService);
  });

  afterEach(async () => {
    await Promise.all(others.splice(0).map((a) => a.close()));
    await sql(`ALTER TABLE ${table} DROP CONSTRAINT IF EXISTS no_poison`);
    await sql(`DELETE FROM ${table}`);
  });

  afterAll(async () => {
    await app?.close();
    await dropSchema(schema);
  });

  it('stores awkward values exactly, in input order, by COPY', async () => {
    const awkward = [
      { text: 'tab\there, newline\nthere, carriage\rreturn', back: 'C:\\path\\to\\file', quote: `it's "quoted"` },
      { unicode: 'zażółć gęślą jaźń 🎉', escaped: '\\N', dot: '\\.', empty: '' },
      ['nested', { deep: [1, 2.5, -3e10, true, false, null] }],
      'a plain string',
      42,
      null,
      { date: new Date('2026-01-02T03:04:05.678Z') },
    ];
    const runAt = new Date(Date.now() + 3_600_000);
    const input: BulkJob[] = Array.from({ length: COPY_PIECE_ROWS * 2 + 17 }, (_, i) => ({
      queue: i % 3 === 0 ? `queue\\with 'odd' "name" ${i % 2}` : 'plain',
      name: i % 5 === 0 ? 'name\\with\\backslashes' : `n${i % 4}`,
      data: awkward[i % awkward.length],
      options:
        i % 4 === 0
          ? { priority: -7, maxAttempts: 9, backoff: { type: 'exponential', delayMs: 10, maxDelayMs: 500, jitter: 0.5 }, timeoutMs: 1234 }
          : i % 4 === 1
            ? { runAt }
            : undefined,
    }));
    expect(input.length).toBeGreaterThanOrEqual(COPY_MIN_ROWS);
    const jobs = await queue.addBulk(input);

    expect(jobs.map((j) => j.data)).toEqual(input.map((j) => JSON.parse(JSON.stringify(j.data))));
    expect(jobs.map((j) => j.queue)).toEqual(input.map((j) => j.queue));
    // Ids grow in input order.
    for (let i = 1; i < jobs.length; i++) expect(BigInt(jobs[i].id)).toBeGreaterThan(BigInt(jobs[i - 1].id));
    expectStoredAsReturned(jobs, await storedRows());
    expect(await count()).toBe(input.length);
    expect(jobs[1].runAt.getTime()).toBe(runAt.getTime());
    expect(jobs[2].runAt.getTime()).toBe(jobs[2].createdAt.getTime());
  });

  it('stores jobs without options by the narrower COPY (queue, name, data), with the table defaults', async () => {
    const data = [{ text: 'tab\there\nnewline', back: 'C:\\dir', quote: `it's` }, ['x', { y: [1, null] }], 'plain', 7, null];
    const input: BulkJob[] = Array.from({ length: COPY_PIECE_ROWS + 3 }, (_, i) => ({
      queue: i % 2 ? `q\\${i % 3}` : 'plain',
      name: `n${i % 4}`,
      data: data[i % data.length],
      // An explicit priority 0 is the default too.
      options: i % 7 === 0 ? { priority: 0 } : undefined,
    }));
    const jobs = await queue.addBulk(input);
    expectStoredAsReturned(jobs, await storedRows());
    for (const job of jobs) {
      expect(job).toMatchObject({ priority: 0, maxAttempts: null, backoff: null, timeoutMs: null });
      expect(job.runAt.getTime()).toBe(job.createdAt!.getTime());
    }
    expect(jobs.map((j) => j.data)).toEqual(input.map((j) => j.data));
  });

  it('one job with an option among many sends every column for all of them', async () => {
    const input: BulkJob[] = Array.from({ length: COPY_MIN_ROWS + 5 }, (_, i) => ({ queue: 'plain', name: 'n', data: { i } }));
    input[input.length - 1].options = { timeoutMs: 777 };
    input[3].options = { runAt: new Date('2031-05-06T07:08:09.123Z') };
    const jobs = await queue.addBulk(input);
    expectStoredAsReturned(jobs, await storedRows());
    expect(jobs[input.length - 1].timeoutMs).toBe(777);
    expect(jobs[3].runAt.toISOString()).toBe('2031-05-06T07:08:09.123Z');
  });

  it("applies the module's default priority to jobs without options", async () => {
    const other = await createTestApp({ schema, queue: { worker: false, defaultJobOptions: { priority: 4 } } });
    others.push(other);
    const input: BulkJob[] = Array.from({ length: COPY_MIN_ROWS }, (_, i) => ({ queue: 'plain', name: 'n', data: { i }, options: i === 0 ? { priority: 0 } : undefined }));
    const jobs = await other.get(QueueService).addBulk(input);
    expectStoredAsReturned(jobs, await storedRows());
    expect(jobs.map((j) => j.priority)).toEqual([0, ...Array(COPY_MIN_ROWS - 1).fill(4)]);
  });

  it('adds nothing, without error, for an empty list', async () => {
    await expect(queue.addBulk([])).resolves.toEqual([]);
    expect(await count()).toBe(0);
  });

  it('reads times back to the exact millisecond', async () => {
    // Timestamps leave the database as float milliseconds; every one must land on its own ms.
    const base = Date.UTC(2026, 0, 1);
    const times = Array.from({ length: 300 }, (_, i) => new Date(base + i * 86_400_000 * 97 + (i % 10 === 0 ? 999 : i % 10 === 1 ? 1 : (i * 7919) % 1000)));
    const jobs = await queue.addBulk(times.map((runAt, i) => ({ queue: 'ms', name: 'n', data: { i }, options: { runAt } })));
    const read = await Promise.all(jobs.map((j) => queue.getJob(j.id)));
    expect(read.map((j) => j!.runAt.toISOString())).toEqual(times.map((t) => t.toISOString()));
  });

  it('returns the right id for every job when other inserts take ids in between', async () => {
    // Several bulk inserts at once, each COPY in its own session: their sequence values interleave.
    const other = await createTestApp({ schema, queue: { worker: false } });
    others.push(other);
    const otherQueue = other.get(QueueService);
    const batches = await Promise.all(
      Array.from({ length: 6 }, (_, b) =>
        (b % 2 ? otherQueue : queue).addBulk(Array.from({ length: 1500 }, (_, i) => ({ queue: 'mix', name: `b${b}`, data: { b, i } }))),
      ),
    );
    // The case under test happened: some batch did not get one run of consecutive ids.
    expect(batches.some((jobs) => BigInt(jobs[jobs.length - 1].id) - BigInt(jobs[0].id) + 1n > BigInt(jobs.length))).toBe(true);
    const rows = await storedRows();
    for (const [b, jobs] of batches.entries()) {
      expectStoredAsReturned(jobs, rows);
      expect(jobs.map((j) => j.data)).toEqual(Array.from({ length: 1500 }, (_, i) => ({ b, i })));
    }
    expect(rows.size).toBe(6 * 1500);
  });

  it('stores nothing when a job deep in the input is invalid, and the connections stay usable', async () => {
    const input: BulkJob[] = Array.from({ length: COPY_PIECE_ROWS * 4 }, (_, i) => ({ queue: 'q', name: 'n', data: { i } }));
    // Past the first pieces, which are already on the wire when it is found.
    input[COPY_PIECE_ROWS * 3 + 5] = { queue: 'q', name: 'n', data: { i: 1, bad: { value: Number.NaN } } };
    const error = await queue.addBulk(input).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InvalidJobDataError);
    expect((error as InvalidJobDataError).path).toBe(`jobs[${COPY_PIECE_ROWS * 3 + 5}].data.bad.value`);
    expect(await count()).toBe(0);
    expect(
      (await sql<{ n: number }>(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE state LIKE 'idle in transaction%' AND datname = current_database()`))[0].n,
    ).toBe(0);
    // Every pooled connection still works (more concurrent inserts than the pool has connections).
    const after = await Promise.all(Array.from({ length: 12 }, (_, k) => queue.addBulk(Array.from({ length: 100 }, (_, i) => ({ queue: 'q', name: 'n', data: { k, i } })))));
    expect(await count()).toBe(1200);
    expectStoredAsReturned(after.flat(), await storedRows());
  });

  it('stores nothing when the database refuses a row in the middle of a COPY', async () => {
    await sql(`ALTER TABLE ${table} ADD CONSTRAINT no_poison CHECK (name <> 'poison')`);
    const input: BulkJob[] = Array.from({ length: 2000 }, (_, i) => ({ queue: 'q', name: i === 1500 ? 'poison' : 'n', data: { i } }));
    await expect(queue.addBulk(input)).rejects.toMatchObject({ name: 'QueueDatabaseError', operation: 'insert', sqlState: '23514', cause: { code: '23514' } });
    expect(await count()).toBe(0);
    const jobs = await queue.addBulk(input.slice(0, 1500));
    expect(jobs).toHaveLength(1500);
    expect(await count()).toBe(1500);
  });

  it('stores nothing when the database refuses a row of a later statement chunk (jobs with delays)', async () => {
    await sql(`ALTER TABLE ${table} ADD CONSTRAINT no_poison CHECK (name <> 'poison')`);
    const total = BULK_CHUNK_SIZE + 500;
    const input: BulkJob[] = Array.from({ length: total }, (_, i) => ({
      queue: 'q',
      name: i === total - 10 ? 'poison' : 'n',
      data: { i },
      options: { delayMs: 60_000 },
    }));
    await expect(queue.addBulk(input)).rejects.toMatchObject({ name: 'QueueDatabaseError', operation: 'insert', sqlState: '23514', cause: { code: '23514' } });
    expect(await count()).toBe(0);
    input[total - 10] = { ...input[total - 10], name: 'n' };
    const jobs = await queue.addBulk(input);
    expectStoredAsReturned(jobs, await storedRows());
    expect(await count()).toBe(total);
    // The delay counts from the database's clock at insert time.
    for (const job of jobs) expect(job.runAt.getTime() - job.createdAt.getTime()).toBe(60_000);
  });

  it('wakes a LISTENing worker: due jobs at once, future ones at their time', async () => {
    const worker = await createTestApp({ schema, providers: [WakeProcessor], queue: { worker: { pollIntervalMs: NO_POLL } } });
    others.push(worker);
    await waitFor('listener connected', async () =>
      (await sql(`SELECT 1 FROM pg_stat_activity WHERE query = $1`, [`LISTEN "${schema}.queue_jobs"`])).length === 1,
    );
    const t0 = Date.now();
    const due = await queue.addBulk(Array.from({ length: 200 }, (_, i) => ({ queue: 'bulk-wake', name: 'now', data: { i } })));
    await waitFor('due jobs done', async () => due.every((j) => started.has(j.id)), 10_000);
    // Generous bound: the point is "not a poll interval", the speed is measured by the bench.
    expect(Math.max(...due.map((j) => started.get(j.id)!)) - t0).toBeLessThan(5_000);

    const runAt = new Date(Date.now() + 800);
    const later = await queue.addBulk(Array.from({ length: 100 }, (_, i) => ({ queue: 'bulk-wake', name: 'later', data: { i }, options: { runAt } })));
    await waitFor('future jobs done', async () => later.every((j) => started.has(j.id)), 10_000);
    for (const job of later) expect(started.get(job.id)!).toBeGreaterThanOrEqual(runAt.getTime() - 50);
  });
});
