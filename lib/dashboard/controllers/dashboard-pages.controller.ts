import { Controller, Get, Header, Param, Query, Req, Res, UseFilters, UseGuards } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import { QueueService } from '../../producer/queue.service';
import { JobState } from '../../interfaces/job.interface';
import { DashboardAccessGuard } from '../dashboard-access.guard';
import { DashboardExceptionFilter } from '../dashboard-exception.filter';
import { DashboardRenderer } from '../dashboard-renderer.service';
import { DashboardData } from '../dashboard-data.service';
import { DashboardTasks } from '../dashboard-tasks.service';
import { DashboardNotFoundException } from '../dashboard-http.errors';
import { jobListHref, parseJobListQuery } from '../dashboard-query';
import { DASHBOARD_PAGE_SIZE } from '../dashboard.constants';
import { parseJobId } from '../dashboard-input';
import { describeBulk, readFailureGroup, type FailureGroupSelection } from '../dashboard-bulk';
import type { DashboardRequest } from '../dashboard-options.interface';

const HTML = 'text/html; charset=utf-8';
const STATES = Object.values(JobState);

/** The dashboard's pages (GET only: reading never changes anything, and works without JavaScript). */
@Controller()
@UseGuards(DashboardAccessGuard)
@UseFilters(DashboardExceptionFilter)
export class DashboardPagesController {
  constructor(
    private readonly queue: QueueService,
    private readonly data: DashboardData,
    private readonly renderer: DashboardRenderer,
    private readonly tasks: DashboardTasks,
    private readonly adapterHost: HttpAdapterHost,
  ) {}

  @Get()
  @Header('Content-Type', HTML)
  async overview(@Req() req: DashboardRequest, @Res({ passthrough: true }) res: unknown): Promise<string> {
    const [queues, throughput, ages] = await Promise.all([this.data.getQueues(), this.data.getThroughput(), this.data.getPendingAges()]);
    return this.renderer.render(req, res, 'overview', 'overview', 'Queues', { queues, throughput, ages, states: STATES });
  }

  @Get('jobs')
  @Header('Content-Type', HTML)
  async jobs(@Req() req: DashboardRequest, @Res({ passthrough: true }) res: unknown, @Query() query: Record<string, unknown>): Promise<string> {
    const list = parseJobListQuery(query);
    const queueInfo = list.queue ? await this.data.findQueue(list.queue) : undefined;
    if (list.queue && !queueInfo) throw new DashboardNotFoundException(`No queue named ${JSON.stringify(list.queue)}`);
    const page = await this.queue.listJobs({ ...list.filter, sort: list.sort, limit: DASHBOARD_PAGE_SIZE, after: list.after || undefined });
    const base = this.renderer.base;
    const here = { queue: list.queue, state: list.state, name: list.name, q: list.q, sort: list.sort };
    const links = {
      older: page.next ? jobListHref(base, { ...here, after: page.next, back: [...list.back, list.after] }) : null,
      newer: list.after ? jobListHref(base, { ...here, after: list.back[list.back.length - 1] ?? '', back: list.back.slice(0, -1) }) : null,
      newest: list.after ? jobListHref(base, here) : null,
      state: (state: string) => jobListHref(base, { ...here, state }),
      sort: (sort: string) => jobListHref(base, { ...here, sort: sort as typeof list.sort }),
    };
    // NOTE: "all N matching" can be told cheaply only for a queue and state (the registry's cached counts).
    const matching = queueInfo && list.state && !list.name && !list.q ? queueInfo.counts[list.state as keyof typeof queueInfo.counts] : null;
    const jobs = page.jobs.map((job) => this.data.redact(job));
    return this.renderer.render(req, res, 'jobs', 'jobs', list.queue ? `Jobs of ${list.queue}` : 'Jobs', {
      list, jobs, result: page, links, matching, states: STATES, queueNames: (await this.data.getQueues()).map((q) => q.name),
    });
  }

  @Get('jobs/bulk/confirm')
  @Header('Content-Type', HTML)
  confirmBulk(@Req() req: DashboardRequest, @Res({ passthrough: true }) res: unknown, @Query() query: Record<string, unknown>): string {
    const bulk = describeBulk(query);
    return this.renderer.render(req, res, 'confirm', 'jobs', 'Confirm', { bulk });
  }

  @Get('jobs/:id')
  @Header('Content-Type', HTML)
  async job(@Req() req: DashboardRequest, @Res({ passthrough: true }) res: unknown, @Param('id') id: string): Promise<string> {
    const jobId = parseJobId(id);
    const stored = await this.queue.getJob(jobId);
    if (!stored) throw new DashboardNotFoundException(`No job ${jobId}`);
    const [logs, children] = await Promise.all([this.queue.getJobLogs(jobId), this.queue.getChildren(jobId)]);
    const job = this.data.redact(stored);
    // NOTE: editing shows the data in a textarea and saves what comes back: not with redacted data.
    const editable = job.state === JobState.Pending && JSON.stringify(job.data) === JSON.stringify(stored.data);
    return this.renderer.render(req, res, 'job', 'jobs', `Job ${job.id}`, { job, logs, children, editable, now: Date.now() });
  }

  @Get('schedules')
  @Header('Content-Type', HTML)
  async schedules(@Req() req: DashboardRequest, @Res({ passthrough: true }) res: unknown): Promise<string> {
    const schedules = await this.queue.getSchedules();
    return this.renderer.render(req, res, 'schedules', 'schedules', 'Schedules', { schedules });
  }

  @Get('workers')
  @Header('Content-Type', HTML)
  async workers(@Req() req: DashboardRequest, @Res({ passthrough: true }) res: unknown): Promise<string> {
    const workers = await this.queue.getWorkers();
    return this.renderer.render(req, res, 'workers', 'workers', 'Workers', { workers });
  }

  @Get('failures')
  @Header('Content-Type', HTML)
  async failures(@Req() req: DashboardRequest, @Res({ passthrough: true }) res: unknown, @Query('queue') queue: unknown): Promise<string> {
    if (queue !== undefined && (typeof queue !== 'string' || (queue !== '' && !(await this.data.findQueue(queue))))) {
      throw new DashboardNotFoundException(`No queue named ${JSON.stringify(queue)}`);
    }
    const failures = await this.data.failureGroups(queue as string | undefined);
    return this.renderer.render(req, res, 'failures', 'failures', 'Failures', { ...failures, queue: queue ?? '' });
  }

  /** The confirmation of "retry this group" (nothing changes until its POST). */
  @Get('failures/confirm')
  @Header('Content-Type', HTML)
  async confirmFailureRetry(@Req() req: DashboardRequest, @Res({ passthrough: true }) res: unknown, @Query() query: Record<string, unknown>): Promise<string> {
    const group = await this.failureGroup(query);
    return this.renderer.render(req, res, 'confirm-failures', 'failures', 'Confirm', { group });
  }

  private async failureGroup(query: Record<string, unknown>): Promise<FailureGroupSelection> {
    const group = readFailureGroup(query);
    if (!(await this.data.findQueue(group.queue))) throw new DashboardNotFoundException(`No queue named ${JSON.stringify(group.queue)}`);
    return group;
  }

  @Get('tasks/:id')
  @Header('Content-Type', HTML)
  task(@Req() req: DashboardRequest, @Res({ passthrough: true }) res: unknown, @Param('id') id: string): string {
    const task = this.tasks.get(id);
    if (!task) throw new DashboardNotFoundException('No such bulk action on this process (it may have been started by another one, or long ago)');
    return this.renderer.render(req, res, 'task', 'jobs', 'Bulk action', { task });
  }

  @Get('static/:file')
  asset(@Param('file') file: string, @Res({ passthrough: true }) res: unknown): string {
    const asset = this.renderer.assets.get(file);
    if (!asset) throw new DashboardNotFoundException('No such file');
    const adapter = this.adapterHost.httpAdapter;
    adapter.setHeader(res, 'Content-Type', asset.contentType);
    // NOTE: the name holds the content's hash, so a new version is a new URL.
    adapter.setHeader(res, 'Cache-Control', 'public, max-age=31536000, immutable');
    return asset.body;
  }
}
