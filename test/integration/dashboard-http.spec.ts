import { Injectable, type CanActivate, type ExecutionContext, type INestApplication } from '@nestjs/common';
import request from 'supertest';
import { Handle, JobState, Processor, QueueService, type ActiveJob, type Job } from '../../lib';
import { createDashboardApp, externalAddress, type Platform } from './helpers/dashboard-app';
import { dropSchema, uniqueSchema } from './helpers/database';
import { waitForJobState } from './helpers/jobs';
import { waitFor } from './helpers/wait-for';

const SCRIPT = '<script>window.__pwned = 1</script>';
const IMG = '"><img src=x onerror="window.__pwned = 2">';

@Processor('dash', { concurrency: 4 })
class DashProcessor {
  @Handle('ok')
  async ok(job: ActiveJob) {
    await job.log(`log ${SCRIPT} ${IMG}`);
    return { echoed: job.data };
  }

  @Handle('boom')
  boom(job: ActiveJob<{ message: string }>) {
    throw new Error(job.data.message);
  }
}

/** Lets in requests with `x-admin: yes`. */
@Injectable()
class HeaderGuard implements CanActivate {
  canActivate(context: ExecutionContext): boolean {
    return context.switchToHttp().getRequest().headers['x-admin'] === 'yes';
  }
}

const SAME_ORIGIN = { 'sec-fetch-site': 'same-origin' };

describe.each<Platform>(['express', 'fastify'])('dashboard over HTTP (%s)', (platform) => {
  const schema = uniqueSchema(`dash_${platform}`);
  /** No guard (loopback only), global prefix `api`, the worker. */
  let open: INestApplication;
  let openPort: number;
  /** A guard, read-only for `x-readonly: 1`, redacting `secret`. */
  let guarded: INestApplication;
  let guardedPort: number;
  let queue: QueueService;
  let failed: Job;
  let hostile: Job;
  const http = () => request(open.getHttpServer());

  beforeAll(async () => {
    ({ app: open, port: openPort } = await createDashboardApp({
      platform, schema, globalPrefix: 'api', listenAll: true, providers: [DashProcessor],
      queue: { worker: { pollIntervalMs: 200 }, defaultJobOptions: { maxAttempts: 1 } } as never,
    }));
    ({ app: guarded, port: guardedPort } = await createDashboardApp({
      platform, schema, listenAll: true, queue: { worker: false },
      dashboard: { path: 'admin/queues', guards: [HeaderGuard], readOnly: (req) => req.headers['x-readonly'] === '1', redact: (job) => ({ ...job, data: { ...(job.data as object), secret: '***' } }) },
    }));
    queue = open.get(QueueService);
    failed = await queue.add('dash', 'boom', { message: `bad ${SCRIPT} ${IMG}` });
    hostile = await queue.add('dash', 'ok', { note: SCRIPT, other: IMG, user: { id: 7 }, secret: 'hunter2' });
    await waitForJobState(queue, failed.id, JobState.Failed);
    await waitForJobState(queue, hostile.id, JobState.Completed);
  });

  afterAll(async () => {
    await guarded?.close();
    await open?.close();
    await dropSchema(schema);
  });

  describe('access', () => {
    it('serves loopback requests without a guard, with the security headers', async () => {
      const res = await http().get('/api/queues').expect(200);
      expect(res.headers['content-type']).toMatch(/^text\/html/);
      const csp = res.headers['content-security-policy'];
      const nonce = /script-src 'nonce-([^']+)'/.exec(csp)?.[1];
      expect(nonce).toBeTruthy();
      expect(csp).toContain("default-src 'none'");
      expect(csp).toContain("frame-ancestors 'none'");
      expect(csp).not.toContain('unsafe-inline');
      expect(res.headers['x-robots-tag']).toContain('noindex');
      // every script and stylesheet carries this response's nonce; another response gets another
      for (const tag of res.text.match(/<(script|link)\b[^>]*>/g) ?? []) expect(tag).toContain(`nonce="${nonce}"`);
      const again = await http().get('/api/queues').expect(200);
      expect(again.headers['content-security-policy']).not.toContain(nonce!);
      expect(res.text).toContain('href="/api/queues/jobs?queue=dash"');
    });

    it('refuses a request from another address when there is no guard', async () => {
      const res = await request(`http://${externalAddress()}:${openPort}`).get('/api/queues').expect(403);
      expect(res.text).toContain('only requests from this machine');
      expect(res.text).toContain('guards: [AdminGuard]');
    });

    it('refuses every route in production when there is no guard, with a page that says how to add one', async () => {
      const before = process.env.NODE_ENV;
      process.env.NODE_ENV = 'production';
      try {
        for (const path of ['/api/queues', '/api/queues/jobs', `/api/queues/jobs/${failed.id}`, '/api/queues/workers']) {
          const res = await http().get(path).expect(403);
          expect(res.text).toContain('refuses every request in production');
          expect(res.text).toContain('guards: [AdminGuard]');
        }
        await http().post(`/api/queues/jobs/${failed.id}/retry`).set(SAME_ORIGIN).expect(403);
      } finally {
        process.env.NODE_ENV = before;
      }
      expect((await queue.getJob(failed.id))!.state).toBe(JobState.Failed);
    });

    it('runs the given guards, from any address', async () => {
      const remote = () => request(`http://${externalAddress()}:${guardedPort}`);
      await remote().get('/admin/queues').expect(403);
      const res = await remote().get('/admin/queues').set('x-admin', 'yes').expect(200);
      expect(res.text).toContain('>dash</a>');
    });

    it('read-only: no action is rendered and every POST answers 403', async () => {
      const ro = () => request(guarded.getHttpServer());
      for (const path of ['/admin/queues', `/admin/queues/jobs?queue=dash`, `/admin/queues/jobs/${failed.id}`, '/admin/queues/failures']) {
        const res = await ro().get(path).set({ 'x-admin': 'yes', 'x-readonly': '1' }).expect(200);
        expect(res.text).not.toMatch(/<form method="post"/);
        expect(res.text).not.toContain('name="ids"');
      }
      const writer = await ro().get(`/admin/queues/jobs/${failed.id}`).set({ 'x-admin': 'yes' }).expect(200);
      expect(writer.text).toContain(`action="/admin/queues/jobs/${failed.id}/retry"`);
      await ro().post(`/admin/queues/jobs/${failed.id}/retry`).set({ 'x-admin': 'yes', 'x-readonly': '1', ...SAME_ORIGIN }).expect(403);
      await ro().post('/admin/queues/queues/dash/pause').set({ 'x-admin': 'yes', 'x-readonly': '1', ...SAME_ORIGIN }).expect(403);
      expect((await queue.getJob(failed.id))!.state).toBe(JobState.Failed);
      expect((await queue.getQueues()).find((q) => q.name === 'dash')!.paused).toBe(false);
    });

    it('refuses a POST that is not same-origin (Sec-Fetch-Site, else Origin)', async () => {
      const post = () => http().post('/api/queues/queues/dash/pause');
      await post().expect(403);
      await post().set('sec-fetch-site', 'cross-site').expect(403);
      await post().set('sec-fetch-site', 'same-site').expect(403);
      await post().set('origin', 'http://evil.example').expect(403);
      await post().set('origin', 'null').expect(403);
      expect((await queue.getQueues()).find((q) => q.name === 'dash')!.paused).toBe(false);
      const ok = await post().set('origin', `http://127.0.0.1:${openPort}`).expect(303);
      expect(ok.headers.location).toBe('/api/queues?notice=paused');
      expect((await queue.getQueues()).find((q) => q.name === 'dash')!.paused).toBe(true);
      await http().post('/api/queues/queues/dash/resume').set(SAME_ORIGIN).expect(303);
      expect((await queue.getQueues()).find((q) => q.name === 'dash')!.paused).toBe(false);
    });

    it('applies redact to every job shown, and offers no edit of redacted data', async () => {
      const pending = await queue.add('dash-idle', 'x', { secret: 'hunter2', plain: 1 }, { runAt: new Date(Date.now() + 3_600_000) });
      const headers = { 'x-admin': 'yes' };
      const list = await request(guarded.getHttpServer()).get('/admin/queues/jobs').set(headers).expect(200);
      expect(list.text).not.toContain('hunter2');
      const detail = await request(guarded.getHttpServer()).get(`/admin/queues/jobs/${pending.id}`).set(headers).expect(200);
      expect(detail.text).not.toContain('hunter2');
      expect(detail.text).toContain('***');
      expect(detail.text).not.toContain('<textarea');
      expect(detail.text).toContain('data is redacted');
      const unredacted = await http().get(`/api/queues/jobs/${pending.id}`).expect(200);
      expect(unredacted.text).toContain('<textarea name="data"');
      await queue.deleteJob(pending.id);
    });
  });

  describe('escaping', () => {
    const raw = [/<script>window/, /<img src=x/i, /onerror="window/];

    it('escapes payloads in data, results, errors and logs', async () => {
      const pages = [
        `/api/queues/jobs/${hostile.id}`, `/api/queues/jobs/${failed.id}`, '/api/queues/jobs?queue=dash', '/api/queues/failures',
        `/api/queues/jobs?q=${encodeURIComponent(`data.note:"${SCRIPT.replace(/"/g, '\\"')}"`)}`,
      ];
      for (const path of pages) {
        const res = await http().get(path).expect(200);
        for (const pattern of raw) expect(res.text).not.toMatch(pattern);
      }
      const detail = await http().get(`/api/queues/jobs/${hostile.id}`).expect(200);
      expect(detail.text).toContain('&lt;script&gt;window.__pwned = 1&lt;/script&gt;');
      expect(detail.text).toContain('log &lt;script&gt;'); // the log line
      const error = await http().get(`/api/queues/jobs/${failed.id}`).expect(200);
      expect(error.text).toContain('Error: bad &lt;script&gt;');
    });

    it('escapes what the URL carries back into the page (search box, filters)', async () => {
      const res = await http().get(`/api/queues/jobs?q=${encodeURIComponent(IMG)}&name=${encodeURIComponent(IMG)}`).expect(200);
      for (const pattern of raw) expect(res.text).not.toMatch(pattern);
      expect(res.text).toContain('value="&quot;&gt;&lt;img src=x');
      const notice = await http().get(`/api/queues?notice=${encodeURIComponent(IMG)}&n=${encodeURIComponent(IMG)}`).expect(200);
      expect(notice.text).not.toContain('class="notice"');
    });
  });

  describe('pages and filters', () => {
    it('lists jobs by queue and state, and filters by data.path:value in the URL', async () => {
      const other = await queue.add('dash-idle', 'x', { user: { id: 8 } }, { runAt: new Date(Date.now() + 3_600_000) });
      const byState = await http().get('/api/queues/jobs?queue=dash&state=failed').expect(200);
      expect(byState.text).toContain(`data-job="${failed.id}"`);
      expect(byState.text).not.toContain(`data-job="${hostile.id}"`);
      const byData = await http().get(`/api/queues/jobs?q=${encodeURIComponent('data.user.id:7')}`).expect(200);
      expect(byData.text).toContain(`data-job="${hostile.id}"`);
      expect(byData.text).not.toContain(`data-job="${other.id}"`);
      const asString = await http().get(`/api/queues/jobs?q=${encodeURIComponent('data.user.id:"7"')}`).expect(200);
      expect(asString.text).not.toContain(`data-job="${hostile.id}"`);
      const byId = await http().get(`/api/queues/jobs?q=${failed.id}`).expect(200);
      expect(byId.text).toContain(`data-job="${failed.id}"`);
      expect(byId.text).not.toContain(`data-job="${hostile.id}"`);
      await queue.deleteJob(other.id);
    });

    it('pages with keyset cursors, older and back newer', async () => {
      const ids: string[] = [];
      for (let i = 0; i < 60; i++) ids.push((await queue.add('dash-paged', 'x', { i }, { runAt: new Date(Date.now() + 3_600_000) })).id);
      // NOTE: the registry lists a new queue from its next recount (at most 2 s).
      await waitFor('the registry to list dash-paged', async () => (await queue.getQueues()).some((q) => q.name === 'dash-paged'));
      const first = await http().get('/api/queues/jobs?queue=dash-paged').expect(200);
      expect(first.text).toContain(`data-job="${ids[59]}"`);
      expect(first.text).not.toContain(`data-job="${ids[0]}"`);
      const older = /href="([^"]+)" rel="next"/.exec(first.text)![1].replace(/&amp;/g, '&');
      const second = await http().get(older).expect(200);
      expect(second.text).toContain(`data-job="${ids[0]}"`);
      expect(second.text).not.toContain(`data-job="${ids[59]}"`);
      expect(second.text).not.toContain('rel="next"');
      const newer = /href="([^"]+)" rel="prev"/.exec(second.text)![1].replace(/&amp;/g, '&');
      const back = await http().get(newer).expect(200);
      expect(back.text).toContain(`data-job="${ids[59]}"`);
      await queue.deleteJobs({ queue: 'dash-paged' });
    });

    it('links a flow\'s parent and children, and a schedule\'s runs', async () => {
      const flow = await queue.addFlow({ queue: 'dash-idle', name: 'parent', data: {}, children: [{ queue: 'dash-idle', name: 'child', data: {}, options: { runAt: new Date(Date.now() + 3_600_000) } }] });
      const child = flow.children[0];
      const parentPage = await http().get(`/api/queues/jobs/${flow.id}`).expect(200);
      expect(parentPage.text).toContain(`href="/api/queues/jobs/${child.id}">job ${child.id}</a>`);
      expect(parentPage.text).toContain('blocked');
      const childPage = await http().get(`/api/queues/jobs/${child.id}`).expect(200);
      expect(childPage.text).toContain(`href="/api/queues/jobs/${flow.id}">job ${flow.id}</a>`);
      await queue.schedule('dash-nightly', { queue: 'dash-idle', name: 'report', cron: '0 3 * * *' });
      const schedules = await http().get('/api/queues/schedules').expect(200);
      expect(schedules.text).toContain('dash-nightly');
      const triggered = await http().post('/api/queues/schedules/dash-nightly/trigger').set(SAME_ORIGIN).expect(303);
      expect(triggered.headers.location).toBe('/api/queues/schedules?notice=schedule-triggered');
      const run = (await queue.getSchedules()).find((x) => x.key === 'dash-nightly')!;
      const runPage = await http().get(`/api/queues/jobs/${run.lastJobId}`).expect(200);
      expect(runPage.text).toContain('href="/api/queues/schedules#schedule-dash-nightly"');
      await http().post('/api/queues/schedules/dash-nightly/pause').set(SAME_ORIGIN).expect(303);
      expect((await queue.getSchedules()).find((x) => x.key === 'dash-nightly')!.paused).toBe(true);
      await http().post('/api/queues/schedules/nope/pause').set(SAME_ORIGIN).expect(404);
      await queue.unschedule('dash-nightly');
      await queue.deleteJobs({ queue: 'dash-idle', state: [JobState.Pending, JobState.Blocked] });
    });

    it('shows the overview, schedules, workers and failures pages', async () => {
      const waiting = await queue.add('dash-aging', 'x', {});
      await waitFor('the registry to list dash-aging', async () => (await queue.getQueues()).some((q) => q.name === 'dash-aging'));
      expect((await queue.getPendingAges())['dash-aging']).toBeGreaterThanOrEqual(0);
      // NOTE: the page's ages are cached for 5 s.
      const row = await waitFor('the overview to show the age of dash-aging', async () => {
        const text = (await http().get('/api/queues').expect(200)).text;
        const found = /<tr data-queue="dash-aging">[\s\S]*?<\/tr>/.exec(text)?.[0];
        return found && /<td class="num age">\d+(ms|s)<\/td>/.test(found) ? found : undefined;
      });
      expect(row).toContain('data-state="pending"');
      await queue.deleteJob(waiting.id);
      const overview = await http().get('/api/queues').expect(200);
      expect(overview.text).toContain('<th>Oldest due</th>');
      expect(overview.text).toMatch(/<svg class="chart completed"/);
      expect(overview.text).toContain('data-state="failed"');
      const workers = await http().get('/api/queues/workers').expect(200);
      expect(workers.text).toContain('dash</a> (4)');
      await http().get('/api/queues/schedules').expect(200);
      const failures = await http().get('/api/queues/failures').expect(200);
      expect(failures.text).toContain('Retry this group');
    });

    it('serves static files under content-hashed names with an immutable cache', async () => {
      const page = await http().get('/api/queues').expect(200);
      const css = /href="(\/api\/queues\/static\/dashboard\.[0-9a-f]{12}\.css)"/.exec(page.text)![1];
      const js = /src="(\/api\/queues\/static\/dashboard\.[0-9a-f]{12}\.js)"/.exec(page.text)![1];
      for (const path of [css, js]) {
        const res = await http().get(path).expect(200);
        expect(res.headers['cache-control']).toBe('public, max-age=31536000, immutable');
      }
      const stylesheet = await http().get(css);
      expect(stylesheet.headers['content-type']).toMatch(/^text\/css/);
      expect(stylesheet.text).toContain('/* nestjs-pg-queue dashboard');
      expect((await http().get(js)).text).toContain("'use strict'");
      await http().get('/api/queues/static/dashboard.css').expect(404);
    });
  });

  describe('bad input', () => {
    it.each([
      ['a malformed cursor', '/api/queues/jobs?after=not-a-cursor', 400, 'after'],
      ['an unknown state', '/api/queues/jobs?state=done', 400, 'state'],
      ['an unknown sort', '/api/queues/jobs?sort=random', 400, 'sort'],
      ['bad JSON in the search box', `/api/queues/jobs?q=${encodeURIComponent('data.user:{"id":')}`, 400, 'Invalid JSON in data.user'],
      ['an empty data path', `/api/queues/jobs?q=${encodeURIComponent('data..x:1')}`, 400, 'data path'],
      ['a malformed id', '/api/queues/jobs/12abc', 400, 'job id'],
      ['an id out of range', '/api/queues/jobs/99999999999999999999', 400, 'job id'],
      ['an unknown job', '/api/queues/jobs/999999999', 404, 'No job'],
      ['an unknown queue', '/api/queues/jobs?queue=nope', 404, 'No queue'],
      ['an unknown queue (failures)', '/api/queues/failures?queue=nope', 404, 'No queue'],
      ['an unknown task', '/api/queues/tasks/123', 404, 'No such bulk action'],
    ])('%s: %s with a message', async (_what, path, status, message) => {
      const res = await http().get(path).expect(status);
      expect(res.headers['content-type']).toMatch(/^text\/html/);
      expect(res.text).toContain(message);
      // Only the page's own content: the head carries a random CSP nonce,
      // and base64 can spell "sqL" by chance.
      const main = /<main>([\s\S]*)<\/main>/.exec(res.text)?.[1];
      expect(main).toContain(message);
      expect(main).not.toMatch(/syntax error|relation|\bSQL\b/i);
    });

    it('refuses a POST to an unknown queue (404) and a bulk action without a selection (400)', async () => {
      await http().post('/api/queues/queues/nope/pause').set(SAME_ORIGIN).expect(404);
      await http().post('/api/queues/jobs/bulk').set(SAME_ORIGIN).type('form').send({ action: 'retry' }).expect(400);
      await http().post('/api/queues/jobs/bulk').set(SAME_ORIGIN).type('form').send({ action: 'explode', ids: failed.id }).expect(400);
      await http().post('/api/queues/jobs/bulk').set(SAME_ORIGIN).type('form').send({ action: 'delete', all: '1' }).expect(400);
      await http().post('/api/queues/queues/dash/limits').set(SAME_ORIGIN).type('form').send({ globalConcurrency: '-3' }).expect(400);
      await http().post('/api/queues/queues/dash/limits').set(SAME_ORIGIN).type('form').send({ rateLimitMax: '5' }).expect(400);
    });
  });

  describe('actions', () => {
    it('edits the data of a pending job, refusing bad JSON and data add() refuses, with the error shown', async () => {
      const job = await queue.add('dash-idle', 'x', { a: 1 }, { runAt: new Date(Date.now() + 3_600_000) });
      const bad = await http().post(`/api/queues/jobs/${job.id}/update`).set(SAME_ORIGIN).type('form').send({ data: '{"a": ' }).expect(400);
      expect(bad.text).toContain('Invalid JSON in data');
      const huge = await http().post(`/api/queues/jobs/${job.id}/update`).set(SAME_ORIGIN).type('form').send({ data: '"\\u0000"' }).expect(400);
      expect(huge.text).toMatch(/data/i);
      expect((await queue.getJob(job.id))!.data).toEqual({ a: 1 });
      const ok = await http().post(`/api/queues/jobs/${job.id}/update`).set(SAME_ORIGIN).type('form').send({ data: '{"a": 2, "b": [1]}' }).expect(303);
      expect(ok.headers.location).toBe(`/api/queues/jobs/${job.id}?notice=updated`);
      expect((await queue.getJob(job.id))!.data).toEqual({ a: 2, b: [1] });
      const page = await http().get(ok.headers.location).expect(200);
      expect(page.text).toContain('Job data saved.');
      // promote, then delete
      await http().post(`/api/queues/jobs/${job.id}/promote`).set(SAME_ORIGIN).expect(303);
      expect((await queue.getJob(job.id))!.runAt.getTime()).toBeLessThanOrEqual(Date.now());
      await http().post(`/api/queues/jobs/${job.id}/delete`).set(SAME_ORIGIN).expect(303);
      expect(await queue.getJob(job.id)).toBeNull();
    });

    it('retries one failed job; a job in the wrong state is a 409', async () => {
      const job = await queue.add('dash', 'boom', { message: 'once' });
      await waitForJobState(queue, job.id, JobState.Failed);
      await http().post(`/api/queues/jobs/${job.id}/retry`).set(SAME_ORIGIN).expect(303);
      await waitForJobState(queue, job.id, JobState.Failed);
      expect((await queue.getJob(job.id))!.claims).toBe(2);
      await http().post(`/api/queues/jobs/${hostile.id}/retry`).set(SAME_ORIGIN).expect(409);
      await http().post(`/api/queues/jobs/${hostile.id}/explode`).set(SAME_ORIGIN).expect(404);
    });

    it('failures: retries a group after a confirmation, as a task', async () => {
      const claimsBefore = (await queue.getJob(failed.id))!.claims;
      const page = await http().get('/api/queues/failures?queue=dash').expect(200);
      const form = /<form method="get" action="\/api\/queues\/failures\/confirm">([\s\S]*?)<\/form>/.exec(page.text.slice(page.text.indexOf('bad &lt;script')))![1];
      const fields = [...form.matchAll(/name="([^"]+)" value="([^"]*)"/g)].map((m): [string, string] => [m[1], m[2].replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&amp;/g, '&')]);
      const query = new URLSearchParams(fields).toString();
      const confirm = await http().get(`/api/queues/failures/confirm?${query}`).expect(200);
      expect(confirm.text).toContain('whose last error contains');
      expect(confirm.text).not.toMatch(/<script>window/);
      expect((await queue.getJob(failed.id))!.claims).toBe(claimsBefore); // nothing changed yet
      const started = await http().post('/api/queues/failures/retry').set(SAME_ORIGIN).type('form').send(query).expect(303);
      await waitFor('the group retry to finish', async () => (await http().get(started.headers.location)).text.includes('data-done="true"'));
      expect((await http().get(started.headers.location)).text).toContain('<dd id="task-affected">1</dd>');
      await waitFor('the retried job to fail again', async () => (await queue.getJob(failed.id))!.claims === claimsBefore + 1 && (await queue.getJob(failed.id))!.state === JobState.Failed);
      await http().get('/api/queues/failures/confirm?queue=dash').expect(400);
      await http().get('/api/queues/failures/confirm?queue=nope&name=x').expect(404);
    });

    it('bulk: confirms, then acts on a selection of ids, and on all matching a filter as a task', async () => {
      const jobs = await Promise.all([1, 2, 3].map((i) => queue.add('dash-bulk', 'x', { i }, { runAt: new Date(Date.now() + 3_600_000) })));
      const confirm = await http().get(`/api/queues/jobs/bulk/confirm?action=cancel&ids=${jobs[0].id}&ids=${jobs[1].id}&queue=dash-bulk`).expect(200);
      expect(confirm.text).toContain('the 2 selected jobs');
      const fields = [...confirm.text.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)">/g)].map((m) => `${m[1]}=${encodeURIComponent(m[2])}`).join('&');
      const done = await http().post('/api/queues/jobs/bulk').set(SAME_ORIGIN).type('form').send(fields).expect(303);
      expect(done.headers.location).toBe('/api/queues/jobs?queue=dash-bulk&notice=bulk-cancel&n=2');
      expect((await queue.getJob(jobs[0].id))!.state).toBe(JobState.Cancelled);
      expect((await queue.getJob(jobs[2].id))!.state).toBe(JobState.Pending);
      const all = await http().post('/api/queues/jobs/bulk').set(SAME_ORIGIN).type('form').send({ action: 'delete', all: '1', queue: 'dash-bulk' }).expect(303);
      expect(all.headers.location).toMatch(/^\/api\/queues\/tasks\/[0-9a-f-]+$/);
      await waitFor('the bulk delete to finish', async () => (await http().get(all.headers.location)).text.includes('data-done="true"'));
      const task = await http().get(all.headers.location).expect(200);
      expect(task.text).toContain('<dd id="task-affected">3</dd>');
      expect((await queue.listJobs({ queue: 'dash-bulk' })).jobs).toEqual([]);
    });
  });
});
