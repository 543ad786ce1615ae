import type { Type } from '@nestjs/common';
import { randomBytes } from 'node:crypto';
import { Handle, JobState, Processor, QueueService } from '../../lib';
import { createTestApp } from './helpers/app';
import { DATABASE_URL, sql } from './helpers/database';
import { waitForJobState } from './helpers/jobs';
import { waitFor } from './helpers/wait-for';

// An idle process must cost the database about one statement per poll interval, whatever its number
// of queues. Counted by the server itself: transactions committed in a database of this test's own
// (pg_stat_database), so nothing else on the server is counted.
const database = `pgq_idle_${randomBytes(4).toString('hex')}`;
const url = (() => {
  const u = new URL(DATABASE_URL);
  u.pathname = `/${database}`;
  return u.toString();
})();
const QUEUES = 200;

function processors(count: number): Type[] {
  return Array.from({ length: count }, (_, i) => {
    const cls = class {
      run() {
        return i;
      }
    };
    Object.defineProperty(cls, 'name', { value: `Idle${i}Processor` });
    Handle()(cls.prototype, 'run', Object.getOwnPropertyDescriptor(cls.prototype, 'run')!);
    Processor(`idle-${i}`)(cls);
    return cls;
  });
}

const committed = async () =>
  Number((await sql<{ n: string }>(`SELECT xact_commit::text AS n FROM pg_stat_database WHERE datname = $1`, [database]))[0].n);

/** Transactions the server counts once the app's connections have ended (and flushed their counts). */
async function settledCount(): Promise<number> {
  let last = -1;
  const { count } = await waitFor('the transaction count to settle', async () => {
    const now = await committed();
    const settled = now === last && (await sql<{ n: number }>(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = $1`, [database]))[0].n === 0;
    last = now;
    return settled ? { count: now } : undefined;
  }, 30_000, 300);
  return count;
}

describe('an idle process with many queues', () => {
  const classes = processors(QUEUES);

  beforeAll(async () => {
    await sql(`CREATE DATABASE "${database}"`);
  });
  afterAll(async () => {
    await sql(`DROP DATABASE IF EXISTS "${database}" WITH (FORCE)`);
  });

  /** Boots the app, keeps it idle for `idleMs`, closes it; returns the transactions it cost. */
  async function run(idleMs: number): Promise<number> {
    const before = await settledCount();
    const app = await createTestApp({ schema: 'public', providers: classes, typeorm: { url }, queue: { worker: { pollIntervalMs: 1000 } } });
    await new Promise((resolve) => setTimeout(resolve, idleMs)); // the idle period being measured
    await app.close();
    return (await settledCount()) - before;
  }

  it(`costs fewer than 5 transactions/s for ${QUEUES} idle queues, and still finds due jobs by polling`, async () => {
    await run(500); // the table is created once, outside the measured runs
    const short = await run(1000);
    const long = await run(6000);
    const perSecond = (long - short) / 5;
    process.stdout.write(`idle-load: ${short} transactions for 1 s idle, ${long} for 6 s: ${perSecond.toFixed(1)}/s\n`);
    expect(perSecond).toBeLessThan(5);

    // The one probe still finds work: with listen off, a job in one of the 200 queues is run.
    const app = await createTestApp({ schema: 'public', providers: classes, typeorm: { url }, queue: { worker: { listen: false, pollIntervalMs: 200 } } });
    try {
      const queue = app.get(QueueService);
      const jobs = await Promise.all([queue.add('idle-7', 'x', {}), queue.add('idle-199', 'x', {})]);
      for (const job of jobs) await waitForJobState(queue, job.id, JobState.Completed);
    } finally {
      await app.close();
    }
  }, 90_000);
});
