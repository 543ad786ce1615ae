import type { INestApplicationContext } from '@nestjs/common';
import { QueueService } from '../../lib';
import type { AttemptOutcome, ClaimDefaults, JobRepository } from '../../lib/database/job.repository';
import { QueueDatabase } from '../../lib/database/queue-database';
import { createTestApp } from './helpers/app';
import { dropSchema, sql, uniqueSchema } from './helpers/database';
import { setLimits } from './helpers/limits';

// Permits: a queue whose only limit is global concurrency is claimed by each worker within its
// share (schema step 5's permit function and `completeAndClaimPermitted`), without the registry
// row's turns. Driven through the repository with made-up worker ids, so each step is exact; the
// worker processes and kills are in chaos/limits-kill.spec.ts.
const schema = uniqueSchema('limits_permits');
const DEFAULTS: ClaimDefaults = { maxAttempts: 3, backoff: { type: 'fixed', delayMs: 0 }, timeoutMs: null };
const LEASE = 30_000;
const done = (id: string, claim: number): AttemptOutcome => ({ id, claim, state: 'completed', result: null, error: null, delayMs: 0, refund: false });

describe('limits: permits for global concurrency', () => {
  let app: INestApplicationContext;
  let queue: QueueService;
  let repository: JobRepository;

  beforeAll(async () => {
    app = await createTestApp({ schema, queue: { worker: false } });
    queue = app.get(QueueService);
    repository = await app.get(QueueDatabase).getRepository();
  });
  afterAll(async () => {
    await app.close();
    await dropSchema(schema);
  });

  const permits = async (q: string) =>
    Object.fromEntries(
      (await sql<{ worker: string; slots: number }>(`SELECT worker, slots FROM "${schema}".queue_jobs_permits WHERE queue = $1 ORDER BY worker`, [q])).map((r) => [r.worker, r.slots]),
    );
  const active = async (q: string) =>
    (await sql<{ n: number }>(`SELECT count(*)::int AS n FROM "${schema}".queue_jobs WHERE queue = $1 AND state = 'active'`, [q]))[0].n;
  const fill = (q: string, n: number) => queue.addBulk(Array.from({ length: n }, (_, i) => ({ queue: q, name: 'x', data: { i } })));

  it('the limited claim of a queue with global concurrency alone says to claim with permits; with any other limit, not', async () => {
    await setLimits(schema, 'p-mode', { globalConcurrency: 5 });
    await fill('p-mode', 2);
    expect((await repository.claimLimited('p-mode', 1, 'w1', LEASE, DEFAULTS)).permits).toBe(true);
    await setLimits(schema, 'p-mode', { globalConcurrency: 5, rateLimit: { max: 10, perMs: 1000 } });
    expect((await repository.claimLimited('p-mode', 1, 'w1', LEASE, DEFAULTS)).permits).toBe(false);
    expect(await repository.acquirePermit('p-mode', 'w1', 10, LEASE)).toMatchObject({ mode: 'limited', slots: 0 });
    await setLimits(schema, 'p-mode', { globalConcurrency: null });
    expect(await repository.acquirePermit('p-mode', 'w1', 10, LEASE)).toMatchObject({ mode: 'plain' });
    expect(await repository.acquirePermit('p-none', 'w1', 10, LEASE)).toMatchObject({ mode: 'plain' });
    expect(await permits('p-mode')).toEqual({});
  });

  it('divides the limit fairly by what each worker wants, and lowers those above their share', async () => {
    await setLimits(schema, 'p-fair', { globalConcurrency: 50 });
    expect(await repository.acquirePermit('p-fair', 'a', 50, LEASE)).toEqual({ slots: 50, share: 50, mode: 'permits' });
    // b wants 5: it gets them, a comes down to the 45 left.
    expect(await repository.acquirePermit('p-fair', 'b', 5, LEASE)).toEqual({ slots: 5, share: 5, mode: 'permits' });
    expect(await permits('p-fair')).toEqual({ a: 45, b: 5 });
    // c wants 50: b keeps its 5, a and c share the 45 left.
    expect(await repository.acquirePermit('p-fair', 'c', 50, LEASE)).toEqual({ slots: 23, share: 23, mode: 'permits' });
    expect(await permits('p-fair')).toEqual({ a: 22, b: 5, c: 23 });
  });

  it('a worker gets only what the others do not hold: active jobs above a lowered permit count until they end', async () => {
    await setLimits(schema, 'p-held', { globalConcurrency: 10 });
    await fill('p-held', 30);
    expect((await repository.acquirePermit('p-held', 'a', 10, LEASE)).slots).toBe(10);
    const claimedByA = await repository.completeAndClaimPermitted([], 'p-held', 10, 'a', LEASE, DEFAULTS);
    expect(claimedByA.jobs).toHaveLength(10);
    expect(claimedByA.slots).toBe(10);
    // b's share is 5, but a holds 10 active jobs: b gets nothing yet, and a is lowered to 5.
    expect(await repository.acquirePermit('p-held', 'b', 10, LEASE)).toEqual({ slots: 0, share: 5, mode: 'permits' });
    expect(await permits('p-held')).toEqual({ a: 5, b: 0 });
    // a completes 3 and claims again: it may hold 5 and still holds 7, so it takes nothing.
    const [j1, j2, j3, ...rest] = claimedByA.jobs;
    const again = await repository.completeAndClaimPermitted([j1, j2, j3].map((j) => done(j.id, j.claims)), 'p-held', 10, 'a', LEASE, DEFAULTS);
    expect(again.written.size).toBe(3);
    expect(again.jobs).toHaveLength(0);
    expect(await active('p-held')).toBe(7);
    // b now gets what a's completions freed, up to its share less what a still holds above its permit.
    expect((await repository.acquirePermit('p-held', 'b', 10, LEASE)).slots).toBe(3);
    expect((await repository.completeAndClaimPermitted([], 'p-held', 10, 'b', LEASE, DEFAULTS)).jobs).toHaveLength(3);
    expect(await active('p-held')).toBe(10);
    // a's remaining jobs end: a may take up to its 5, b up to its share once it asks again.
    const after = await repository.completeAndClaimPermitted(rest.map((j) => done(j.id, j.claims)), 'p-held', 10, 'a', LEASE, DEFAULTS);
    expect(after.written.size).toBe(7);
    expect(after.jobs).toHaveLength(5);
    expect((await repository.acquirePermit('p-held', 'b', 10, LEASE)).slots).toBe(5);
    expect((await repository.completeAndClaimPermitted([], 'p-held', 10, 'b', LEASE, DEFAULTS)).jobs).toHaveLength(2);
    expect(await active('p-held')).toBe(10);
  });

  it('a change of the limits voids the permits at once; a lapsed permit claims nothing and is dropped', async () => {
    await setLimits(schema, 'p-void', { globalConcurrency: 4 });
    await fill('p-void', 20);
    expect((await repository.acquirePermit('p-void', 'a', 10, LEASE)).slots).toBe(4);
    await queue.updateQueue('p-void', { globalConcurrency: 2 });
    expect(await permits('p-void')).toEqual({});
    const voided = await repository.completeAndClaimPermitted([], 'p-void', 10, 'a', LEASE, DEFAULTS);
    expect(voided).toMatchObject({ jobs: [], slots: null });
    expect((await repository.acquirePermit('p-void', 'a', 10, LEASE)).slots).toBe(2);
    expect((await repository.completeAndClaimPermitted([], 'p-void', 10, 'a', LEASE, DEFAULTS)).jobs).toHaveLength(2);
    // A permit of 1 ms lapses: its claims take nothing, and the next acquire drops it.
    expect((await repository.acquirePermit('p-void', 'b', 10, 1)).slots).toBe(0);
    await sql(`SELECT pg_sleep(0.01)`);
    expect((await repository.completeAndClaimPermitted([], 'p-void', 10, 'b', LEASE, DEFAULTS)).slots).toBeNull();
    await repository.acquirePermit('p-void', 'a', 10, LEASE);
    expect(Object.keys(await permits('p-void'))).toEqual(['a']);
    await repository.releasePermit('p-void', 'a');
    expect(await permits('p-void')).toEqual({});
  });

  it('the limited claim counts the permits others hold, used or not', async () => {
    await setLimits(schema, 'p-mixed', { globalConcurrency: 6 });
    await fill('p-mixed', 20);
    expect((await repository.acquirePermit('p-mixed', 'a', 4, LEASE)).slots).toBe(4);
    // a holds its 4 places without a job running: a limited claim of another worker gets 2.
    expect((await repository.claimLimited('p-mixed', 10, 'w', LEASE, DEFAULTS)).jobs).toHaveLength(2);
    expect((await repository.completeAndClaimPermitted([], 'p-mixed', 10, 'a', LEASE, DEFAULTS)).jobs).toHaveLength(4);
    expect(await active('p-mixed')).toBe(6);
  });

  it('a paused queue or one blocked by a RateLimitedError claims nothing with a permit; the block says for how long', async () => {
    await setLimits(schema, 'p-stop', { globalConcurrency: 3 });
    await fill('p-stop', 5);
    expect((await repository.acquirePermit('p-stop', 'a', 3, LEASE)).slots).toBe(3);
    await queue.pause('p-stop');
    expect((await repository.completeAndClaimPermitted([], 'p-stop', 3, 'a', LEASE, DEFAULTS)).jobs).toHaveLength(0);
    await queue.resume('p-stop');
    await sql(`UPDATE "${schema}".queue_jobs_queues SET rate_limited_until = now() + interval '5 seconds' WHERE name = 'p-stop'`);
    const blocked = await repository.completeAndClaimPermitted([], 'p-stop', 3, 'a', LEASE, DEFAULTS);
    expect(blocked.jobs).toHaveLength(0);
    expect(blocked.slots).toBe(3);
    expect(blocked.waitMs).toBeGreaterThan(4000);
    expect(blocked.waitMs).toBeLessThanOrEqual(5000);
  });
});
