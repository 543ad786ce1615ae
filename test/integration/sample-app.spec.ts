import type { INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { AddressInfo } from 'node:net';
import { AppModule } from '../../sample-app/src/app.module';
import { assertDatabaseReachable } from '../../sample-app/src/database-check';
import { DATABASE_URL, dropSchema, sql, uniqueSchema } from './helpers/database';
import { waitFor } from './helpers/wait-for';

const schema = uniqueSchema('sample');

interface HttpResult<T = any> {
  status: number;
  body: T;
}

describe('sample app over HTTP', () => {
  let app: INestApplication;
  let baseUrl: string;

  async function request<T = any>(method: 'GET' | 'POST', path: string, body?: unknown): Promise<HttpResult<T>> {
    const response = await fetch(`${baseUrl}${path}`, {
      method,
      headers: body === undefined ? undefined : { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    return { status: response.status, body: text ? JSON.parse(text) : undefined };
  }

  function waitForJob(id: string, state: string) {
    return waitFor(`job ${id} to be ${state}`, async () => {
      const { body } = await request('GET', `/jobs/${id}`);
      return body?.state === state ? body : undefined;
    });
  }

  async function jobRowCount(): Promise<number> {
    return (await sql<{ n: number }>(`SELECT count(*)::int AS n FROM "${schema}".queue_jobs`))[0].n;
  }

  beforeAll(async () => {
    // TypeORM's synchronize creates tables, not schemas; the queue's migration creates its own.
    await sql(`CREATE SCHEMA "${schema}"`);
    app = await NestFactory.create(AppModule.forRoot({ databaseUrl: DATABASE_URL, schema, port: 0 }), {
      logger: process.env.TEST_LOGS ? undefined : ['error'],
    });
    await app.listen(0, '127.0.0.1');
    baseUrl = `http://127.0.0.1:${(app.getHttpServer().address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    await app?.close();
    await dropSchema(schema);
  });

  it('POST /signup saves the user and enqueues a welcome email that completes', async () => {
    const res = await request('POST', '/signup', { email: '  Ada@Example.com ' });
    expect(res.status).toBe(201);
    expect(res.body.user).toMatchObject({ email: 'ada@example.com' });
    expect(res.body.jobId).toMatch(/^\d+$/);

    const users = await sql(`SELECT id, email FROM "${schema}".sample_users`);
    expect(users).toEqual([{ id: res.body.user.id, email: 'ada@example.com' }]);

    const job = await waitForJob(res.body.jobId, 'completed');
    expect(job).toMatchObject({
      queue: 'email',
      name: 'welcome',
      data: { userId: res.body.user.id, email: 'ada@example.com' },
      attempts: 1,
      maxAttempts: 5,
      lastError: null,
    });
    expect(job.result.messageId).toEqual(expect.any(String));
  });

  it('a signup whose transaction rolls back (duplicate email -> 409) leaves no job behind', async () => {
    const jobsBefore = await jobRowCount();
    const [{ seq }] = await sql<{ seq: string }>(`SELECT pg_get_serial_sequence($1, 'id') AS seq`, [`"${schema}".queue_jobs`]);
    const lastId = async () => BigInt((await sql<{ v: string }>(`SELECT last_value::text AS v FROM ${seq}`))[0].v);
    const idBefore = await lastId();

    const res = await request('POST', '/signup', { email: 'ADA@example.com' });
    expect(res.status).toBe(409);
    expect(res.body.message).toContain('ada@example.com');

    // The job was inserted (it took an id) before the user INSERT failed, and was rolled back with it.
    expect(await lastId()).toBe(idBefore + 1n);
    expect(await jobRowCount()).toBe(jobsBefore);
    const jobs = await sql(`SELECT id FROM "${schema}".queue_jobs WHERE data->>'email' = 'ada@example.com'`);
    expect(jobs).toHaveLength(1);
    expect(await sql(`SELECT id FROM "${schema}".sample_users`)).toHaveLength(1);
  });

  it('rejects a bad signup body with 400 and enqueues nothing', async () => {
    const jobsBefore = await jobRowCount();
    expect((await request('POST', '/signup', { email: 'not-an-email' })).status).toBe(400);
    expect((await request('POST', '/signup', { email: 42 })).status).toBe(400);
    expect((await request('POST', '/signup')).status).toBe(400);
    expect(await jobRowCount()).toBe(jobsBefore);
  });

  it('GET /jobs/:id answers 404 for a missing job and 400 for ids that are not job ids', async () => {
    const missing = await request('GET', '/jobs/999999999');
    expect(missing.status).toBe(404);
    for (const bad of ['abc', '0', '-1', '1.5', '9999999999999999999', '99999999999999999999']) {
      const res = await request('GET', `/jobs/${bad}`);
      expect({ bad, status: res.status, error: res.body.error }).toEqual({ bad, status: 400, error: 'InvalidJobOptionError' });
    }
  });

  it('retries a failing job, shows its last error, and revives it with POST /jobs/:id/retry', async () => {
    const added = await request('POST', '/jobs', {
      queue: 'email',
      name: 'flaky-report',
      data: { reportId: 1, failureRate: 1 },
      options: { maxAttempts: 2, backoff: { type: 'fixed', delayMs: 10 } },
    });
    expect(added.status).toBe(201);
    expect(added.body).toMatchObject({ state: 'pending', maxAttempts: 2 });

    const failed = await waitForJob(added.body.id, 'failed');
    expect(failed).toMatchObject({ attempts: 2, maxAttempts: 2, result: null });
    expect(failed.lastError).toMatchObject({ attempt: 2, message: 'Report service unavailable (simulated)' });
    expect(Date.parse(failed.runAt)).not.toBeNaN();

    const cancel = await request('POST', `/jobs/${added.body.id}/cancel`);
    expect(cancel.status).toBe(409);
    expect(cancel.body.error).toBe('InvalidJobStateError');

    const retried = await request('POST', `/jobs/${added.body.id}/retry`);
    expect(retried.status).toBe(200);
    expect(retried.body).toMatchObject({ state: 'pending', attempts: 0 });
    await waitForJob(added.body.id, 'failed');
  });

  it('runs a job that succeeds, with the processor defaults applied', async () => {
    const added = await request('POST', '/jobs', { queue: 'email', name: 'flaky-report', data: { failureRate: 0 } });
    const done = await waitForJob(added.body.id, 'completed');
    expect(done).toMatchObject({ attempts: 1, maxAttempts: 5, backoff: { type: 'exponential', delayMs: 500 } });
    expect(done.result.pages).toEqual(expect.any(Number));
  });

  it('cancels a delayed job, counts jobs per state, and maps bad input to 400 and unknown ids to 404', async () => {
    const runAt = new Date(Date.now() + 3_600_000).toISOString();
    const added = await request('POST', '/jobs', { queue: 'email', name: 'welcome', data: {}, options: { runAt } });
    expect(added.body.runAt).toBe(runAt);
    const cancelled = await request('POST', `/jobs/${added.body.id}/cancel`);
    expect(cancelled.status).toBe(200);
    expect(cancelled.body.state).toBe('cancelled');

    const counts = await request('GET', '/jobs/counts?queue=email');
    expect(counts.status).toBe(200);
    expect(counts.body).toEqual({ pending: 0, active: 0, completed: 2, failed: 1, cancelled: 1, blocked: 0 });

    expect((await request('POST', '/jobs', { queue: 'email', name: 'welcome', options: { runAt: 'soon' } })).status).toBe(400);
    expect((await request('POST', '/jobs', { queue: 'email', name: 'welcome', options: { priority: 1.5 } })).status).toBe(400);
    expect((await request('POST', '/jobs', { queue: 'email', name: 'welcome', options: { manager: {} } })).status).toBe(400);
    expect((await request('POST', '/jobs', { queue: '', name: 'welcome' })).status).toBe(400);
    expect((await request('POST', '/jobs/999999999/retry')).status).toBe(404);
    expect((await request('POST', '/jobs/999999999/cancel')).status).toBe(404);
  });

  it('GET / leads to the dashboard, behind the demo guard (admin acts, viewer only reads)', async () => {
    const root = await fetch(`${baseUrl}/`, { redirect: 'manual' });
    expect(root.status).toBe(302);
    expect(root.headers.get('location')).toBe('/queues');
    const anonymous = await fetch(`${baseUrl}/queues`);
    expect(anonymous.status).toBe(401);
    expect(anonymous.headers.get('www-authenticate')).toContain('Basic');
    const basic = (user: string) => ({ authorization: `Basic ${Buffer.from(`${user}:demo`).toString('base64')}` });
    const admin = await fetch(`${baseUrl}/queues`, { headers: basic('admin') });
    expect(admin.status).toBe(200);
    const adminPage = await admin.text();
    expect(adminPage).toContain('<h1>Queues</h1>');
    expect(adminPage).toContain('<form method="post"');
    const viewer = await fetch(`${baseUrl}/queues`, { headers: basic('viewer') });
    expect(viewer.status).toBe(200);
    expect(await viewer.text()).not.toContain('<form method="post"');
    const refused = await fetch(`${baseUrl}/queues/queues/demo/pause`, { method: 'POST', headers: { ...basic('viewer'), 'sec-fetch-site': 'same-origin' } });
    expect(refused.status).toBe(403);
    expect((await fetch(`${baseUrl}/queues`, { headers: { authorization: `Basic ${Buffer.from('admin:wrong').toString('base64')}` } })).status).toBe(401);
  });

  it('GET /demo is an HTML page with the demo buttons and the latest jobs, escaped', async () => {
    // A job name and an error message that would be markup if the page did not escape them.
    const evil = '<img src=x onerror=alert(1)>';
    const added = await request('POST', '/jobs', { queue: 'demo', name: evil, data: {} });
    expect(added.status).toBe(201);
    await waitForJob(added.body.id, 'failed'); // no handler for that name: MissingHandlerError, whose message repeats it

    const response = await fetch(`${baseUrl}/demo`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^text\/html/);
    const html = await response.text();
    expect(html).toContain('<h1>nestjs-pg-queue sample app</h1>');
    for (const id of ['id="signup"', 'id="fails-twice"', 'id="slow"', '<tbody id="jobs">']) expect(html).toContain(id);
    expect(html).not.toContain(evil);
    expect(html).toContain('&lt;img src=x onerror=alert(1)&gt;');
    expect(html).toContain(`<td>${added.body.id}</td>`);
  });

  it('the page\'s demo jobs: fails-twice succeeds on attempt 3, a slow job is cancelled while it runs', async () => {
    const flaky = await request('POST', '/jobs', { queue: 'demo', name: 'fails-twice' });
    const slow = await request('POST', '/jobs', { queue: 'demo', name: 'slow', data: { seconds: 120 } });
    await waitForJob(slow.body.id, 'active');
    const cancelled = await request('POST', `/jobs/${slow.body.id}/cancel`);
    expect(cancelled.body.state).toBe('cancelled');

    const done = await waitForJob(flaky.body.id, 'completed');
    expect(done).toMatchObject({ attempts: 3, result: { succeededOnAttempt: 3 } });
    expect(done.lastError.message).toContain('attempt 2 of 3');

    const latest = await request('GET', '/jobs/latest');
    expect(latest.status).toBe(200);
    expect(latest.body[0]).toEqual({ id: slow.body.id, queue: 'demo', name: 'slow', state: 'cancelled', attempts: 1, maxAttempts: 3, error: null });
    expect(latest.body[1]).toMatchObject({ id: flaky.body.id, state: 'completed', attempts: 3, error: expect.stringContaining('attempt 2 of 3') });
  });
});

describe('sample app start-up check', () => {
  it('fails fast, naming host and port, when DATABASE_URL points at nothing', async () => {
    const started = Date.now();
    await expect(assertDatabaseReachable('postgres://postgres@127.0.0.1:1/test', 3000)).rejects.toThrow(
      'Cannot reach PostgreSQL at 127.0.0.1:1/test (DATABASE_URL): ECONNREFUSED',
    );
    expect(Date.now() - started).toBeLessThan(3000);
  });
});
