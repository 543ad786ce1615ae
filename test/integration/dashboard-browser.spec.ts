import type { INestApplication } from '@nestjs/common';
import { existsSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { Handle, JobState, Processor, QueueService, type ActiveJob, type Job } from '../../lib';
import { createDashboardApp } from './helpers/dashboard-app';
import { dropSchema, uniqueSchema } from './helpers/database';
import { waitForJobState } from './helpers/jobs';
import { waitFor } from './helpers/wait-for';

/** Debian's Chromium (never a browser Playwright downloads). */
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
/** With SAVE_SCREENSHOTS=1 the screenshots replace those of docs/images (shown in the README); else they go to a temporary folder. */
const SCREENSHOTS = process.env.SAVE_SCREENSHOTS === '1' ? join(__dirname, '../../docs/images') : join(tmpdir(), 'nestjs-pg-queue-dashboard-screenshots');
const PAYLOAD = '<img src=x onerror="window.__pwned = 1"><script>window.__pwned = 2</script>';

@Processor('shop', { concurrency: 2 })
class ShopProcessor {
  @Handle('charge')
  async charge(job: ActiveJob<{ customer: { id: number }; amount: number; fail?: boolean }>) {
    await job.log(`charging ${job.data.amount} ${PAYLOAD}`);
    await job.progress(100);
    if (job.data.fail) throw new Error(`card declined ${PAYLOAD}`);
    return { charged: job.data.amount };
  }
}

describe('dashboard in a real browser (Chromium)', () => {
  const schema = uniqueSchema('dash_browser');
  let app: INestApplication;
  let url: string;
  let queue: QueueService;
  let browser: Browser;
  let page: Page;
  const failed: Job[] = [];

  beforeAll(async () => {
    if (!existsSync(CHROMIUM)) {
      throw new Error(`Chromium is missing at ${CHROMIUM}: install it with "apt-get install -y chromium" (or set CHROMIUM_PATH); this test never downloads a browser`);
    }
    ({ app, url } = await createDashboardApp({
      platform: 'express', schema, providers: [ShopProcessor],
      queue: { worker: { pollIntervalMs: 200 }, defaultJobOptions: { maxAttempts: 1 }, stats: { flushIntervalMs: 500 } } as never,
      dashboard: { path: 'queues', cacheMs: 500, readOnly: (req) => req.headers['x-read-only'] === '1' },
    }));
    queue = app.get(QueueService);
    for (let i = 0; i < 3; i++) failed.push(await queue.add('shop', 'charge', { customer: { id: 30 + i }, amount: 10 * (i + 1), fail: true, note: PAYLOAD }));
    const done = [];
    for (let i = 0; i < 4; i++) done.push(await queue.add('shop', 'charge', { customer: { id: 42 }, amount: 5 + i }));
    await queue.add('mail', 'welcome', { to: 'ada@example.com' }, { runAt: new Date(Date.now() + 3_600_000) });
    for (const job of failed) await waitForJobState(queue, job.id, JobState.Failed);
    for (const job of done) await waitForJobState(queue, job.id, JobState.Completed);
    await waitFor('the registry to count both queues', async () => {
      const queues = await queue.getQueues();
      return queues.find((q) => q.name === 'shop')?.counts.failed === 3 && queues.some((q) => q.name === 'mail');
    });
    await waitFor('the rollups to hold the first runs (for the charts)', async () => (await queue.getStats({ queue: 'shop' })).reduce((n, r) => n + r.completed + r.failed, 0) === 7);
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
    });
    page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    mkdirSync(SCREENSHOTS, { recursive: true });
  });

  afterAll(async () => {
    await browser?.close();
    await app?.close();
    await dropSchema(schema);
  });

  async function assertNothingInjectedRan(p: Page = page): Promise<void> {
    expect(await p.evaluate(() => (globalThis as unknown as { __pwned?: number }).__pwned)).toBeUndefined();
  }

  it('opens the overview with every queue, its counts and charts', async () => {
    await page.goto(`${url}/queues`);
    const shop = page.locator('tr[data-queue="shop"]');
    await shop.waitFor();
    expect(await shop.locator('a.count[data-state="failed"]').textContent()).toBe('3');
    expect(await page.locator('tr[data-queue="mail"]').count()).toBe(1);
    expect(await shop.locator('svg.chart').count()).toBe(2);
    expect(await shop.locator('svg.chart.completed rect[height="24"]').count()).toBe(1); // this minute's bar, the tallest
    expect(await shop.locator('svg.chart.failed title').textContent()).toContain('failed: 3 in the last hour');
    await page.screenshot({ path: join(SCREENSHOTS, 'dashboard-overview.png'), fullPage: true });
    await assertNothingInjectedRan();
  });

  it('sees a count change live, without reloading the page', async () => {
    await page.goto(`${url}/queues`);
    await page.selectOption('#refresh-interval', '2');
    await page.evaluate(() => { (globalThis as unknown as { __sameDocument: boolean }).__sameDocument = true; });
    const pending = page.locator('tr[data-queue="mail"] a.count[data-state="pending"]');
    expect(await pending.textContent()).toBe('1');
    await queue.add('mail', 'welcome', { to: 'grace@example.com' }, { runAt: new Date(Date.now() + 3_600_000) });
    await waitFor('the pending count of mail to become 2 on the page', async () => (await pending.textContent()) === '2', 20_000);
    expect(await page.evaluate(() => (globalThis as unknown as { __sameDocument?: boolean }).__sameDocument)).toBe(true);
  });

  it('keeps checked boxes across a live refresh, refreshes nothing while the tab is hidden, and at once when it shows again', async () => {
    await page.goto(`${url}/queues/jobs?queue=shop&state=completed`);
    await page.selectOption('#refresh-interval', '2');
    const box = page.locator('#jobs input[name="ids"]').first();
    await box.check();
    const isRefresh = (r: { headers(): Record<string, string> }) => r.headers()['x-dashboard-refresh'] === '1';
    await page.waitForRequest(isRefresh, { timeout: 10_000 });
    await page.waitForResponse((r) => isRefresh(r.request()), { timeout: 10_000 });
    await page.waitForFunction(() => !!(globalThis as unknown as { document: { querySelector(s: string): unknown } }).document.querySelector('#jobs input[name="ids"]'));
    expect(await box.isChecked()).toBe(true);
    // hidden: the timer keeps ticking but fetches nothing
    let refreshes = 0;
    page.on('request', (r) => { if (isRefresh(r)) refreshes++; });
    await page.evaluate(() => {
      const doc = (globalThis as unknown as { document: object & { dispatchEvent(e: unknown): void } }).document;
      Object.defineProperty(doc, 'visibilityState', { configurable: true, get: () => 'hidden' });
      doc.dispatchEvent(new Event('visibilitychange'));
    });
    // NOTE: a window of two intervals and more; a slow machine can only make it fetch less.
    await new Promise((r) => setTimeout(r, 4500));
    expect(refreshes).toBe(0);
    const shown = page.waitForRequest(isRefresh, { timeout: 1500 });
    await page.evaluate(() => {
      const doc = (globalThis as unknown as { document: object & { dispatchEvent(e: unknown): void } }).document;
      Object.defineProperty(doc, 'visibilityState', { configurable: true, get: () => 'visible' });
      doc.dispatchEvent(new Event('visibilitychange'));
    });
    await shown;
    await page.selectOption('#refresh-interval', '0');
  });

  it('filters jobs by data. in a bookmarkable URL and opens one', async () => {
    await page.goto(`${url}/queues/jobs?queue=shop`);
    await page.fill('input[name="q"]', 'data.customer.id:42');
    await Promise.all([page.waitForURL(/q=data\.customer\.id%3A42/), page.click('form.filters button[type="submit"]')]);
    const rows = page.locator('#jobs tbody tr');
    expect(await rows.count()).toBe(4);
    for (const state of await rows.locator('.state').allTextContents()) expect(state).toBe('completed');
    await page.screenshot({ path: join(SCREENSHOTS, 'dashboard-jobs.png'), fullPage: true });
    // the URL is the filter: opening it afresh shows the same list
    await page.goto(page.url());
    expect(await page.locator('#jobs tbody tr').count()).toBe(4);
    await Promise.all([page.waitForURL(/\/queues\/jobs\/\d+$/), rows.first().locator('a').first().click()]);
    expect(await page.locator('h1').textContent()).toContain('completed');
    expect(await page.locator('ol.logs').textContent()).toContain('charging');
    await assertNothingInjectedRan();
  });

  it('retries a failed job from its page', async () => {
    const job = failed[0];
    await page.goto(`${url}/queues/jobs/${job.id}`);
    expect(await page.locator('.error-message').first().textContent()).toContain('card declined <img src=x');
    await page.screenshot({ path: join(SCREENSHOTS, 'dashboard-job.png'), fullPage: true });
    await assertNothingInjectedRan();
    await Promise.all([page.waitForURL(/notice=retried/), page.click('button[data-action="retry"]')]);
    expect(await page.locator('.notice').textContent()).toBe('Job retried.');
    await waitFor('the retried job to have run again', async () => (await queue.getJob(job.id))?.claims === 2 && (await queue.getJob(job.id))?.state === JobState.Failed);
  });

  it('bulk-retries a selection after a confirmation', async () => {
    await page.goto(`${url}/queues/jobs?queue=shop&state=failed`);
    const boxes = page.locator('#jobs input[name="ids"]');
    expect(await boxes.count()).toBe(3);
    // the two newest: not the one the previous test retried
    const ids = [await boxes.nth(0).getAttribute('value'), await boxes.nth(1).getAttribute('value')];
    expect(ids).toEqual([failed[2].id, failed[1].id]);
    await boxes.nth(0).check();
    await boxes.nth(1).check();
    await Promise.all([page.waitForURL(/bulk\/confirm/), page.click('button[data-bulk="retry"]')]);
    expect(await page.locator('main').textContent()).toContain('the 2 selected jobs');
    await Promise.all([page.waitForURL(/notice=bulk-retry&n=2/), page.click('button[data-action="confirm"]')]);
    expect(await page.locator('.notice').textContent()).toBe('Retried 2 jobs.');
    for (const id of ids) await waitFor(`job ${id} to have run again`, async () => (await queue.getJob(id!))?.claims === 2);
    await assertNothingInjectedRan();
  });

  it('pauses and resumes a queue', async () => {
    await page.goto(`${url}/queues`);
    await Promise.all([page.waitForURL(/notice=paused/), page.click('tr[data-queue="shop"] button[data-action="pause"]')]);
    expect(await page.locator('tr[data-queue="shop"] .badge.paused').count()).toBe(1);
    expect((await queue.getQueues()).find((q) => q.name === 'shop')!.paused).toBe(true);
    await Promise.all([page.waitForURL(/notice=resumed/), page.click('tr[data-queue="shop"] button[data-action="resume"]')]);
    expect(await page.locator('tr[data-queue="shop"] .badge.paused').count()).toBe(0);
    expect((await queue.getQueues()).find((q) => q.name === 'shop')!.paused).toBe(false);
  });

  it('a read-only session finds no action anywhere', async () => {
    const context = await browser.newContext({ extraHTTPHeaders: { 'x-read-only': '1' } });
    try {
      const ro = await context.newPage();
      for (const path of ['/queues', '/queues/jobs?queue=shop&state=failed', `/queues/jobs/${failed[0].id}`, '/queues/failures', '/queues/schedules']) {
        await ro.goto(`${url}${path}`);
        expect(await ro.locator('form[method="post"], button[data-action], button[data-bulk], input[name="ids"]').count()).toBe(0);
        await assertNothingInjectedRan(ro);
      }
      // and the server refuses the POST a page would have sent
      const status = await ro.evaluate(async (target) => (await fetch(target, { method: 'POST' })).status, `${url}/queues/jobs/${failed[0].id}/retry`);
      expect(status).toBe(403);
    } finally {
      await context.close();
    }
  });
});
