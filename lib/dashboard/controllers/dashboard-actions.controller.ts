import { Body, Controller, Param, Post, Redirect, UseFilters, UseGuards } from '@nestjs/common';
import { QueueService } from '../../producer/queue.service';
import type { QueueLimitsUpdate } from '../../interfaces/processor-options.interface';
import { DashboardAccessGuard } from '../dashboard-access.guard';
import { DashboardExceptionFilter } from '../dashboard-exception.filter';
import { DashboardRenderer } from '../dashboard-renderer.service';
import { DashboardData } from '../dashboard-data.service';
import { DashboardTasks } from '../dashboard-tasks.service';
import { DashboardBadRequestException, DashboardNotFoundException } from '../dashboard-http.errors';
import { describeBulk, readFailureGroup, type BulkAction } from '../dashboard-bulk';
import { field, optionalPositiveInt, parseJobId, parseJsonField } from '../dashboard-input';
import { jobListHref } from '../dashboard-query';
import type { BulkActionOptions, JobSelection } from '../../interfaces/job-admin.interface';

type Form = Record<string, unknown>;
interface Redirection { url: string; statusCode: number }

const SINGLE_ACTIONS = ['retry', 'cancel', 'delete', 'promote'] as const;

/**
 * Every change the dashboard makes: POST only, each checked by the access guard (same origin, not
 * read-only), each answered with a 303 to the page to see (Post/Redirect/Get), or an error page.
 */
@Controller()
@UseGuards(DashboardAccessGuard)
@UseFilters(DashboardExceptionFilter)
export class DashboardActionsController {
  constructor(
    private readonly queue: QueueService,
    private readonly data: DashboardData,
    private readonly renderer: DashboardRenderer,
    private readonly tasks: DashboardTasks,
  ) {}

  @Post('jobs/bulk')
  @Redirect('.', 303)
  async bulk(@Body() body: Form): Promise<Redirection> {
    const bulk = describeBulk(body ?? {});
    if (bulk.byFilter) {
      const task = this.tasks.start(bulk.action, describe(bulk.list), (selection, options) => this.runBulk(bulk.action, selection, options), bulk.selection);
      return this.to(`/tasks/${task.id}`);
    }
    const affected = await this.runBulk(bulk.action, bulk.selection, {});
    this.data.getQueues(true).catch(() => undefined);
    const back = jobListHref(this.renderer.base, { ...bulk.list, sort: 'newest' });
    return { url: `${back}${back.includes('?') ? '&' : '?'}notice=bulk-${bulk.action}&n=${affected}`, statusCode: 303 };
  }

  @Post('jobs/:id/update')
  @Redirect('.', 303)
  async update(@Param('id') id: string, @Body() body: Form): Promise<Redirection> {
    const jobId = parseJobId(id);
    const data = parseJsonField('data', field(body ?? {}, 'data'));
    await this.queue.updateJob(jobId, { data });
    return this.to(`/jobs/${jobId}?notice=updated`);
  }

  @Post('jobs/:id/:action')
  @Redirect('.', 303)
  async single(@Param('id') id: string, @Param('action') action: string): Promise<Redirection> {
    const jobId = parseJobId(id);
    if (!(SINGLE_ACTIONS as readonly string[]).includes(action)) throw new DashboardNotFoundException(`No action ${JSON.stringify(action)}`);
    switch (action as (typeof SINGLE_ACTIONS)[number]) {
      case 'retry': await this.queue.retry(jobId); break;
      case 'cancel': await this.queue.cancel(jobId); break;
      case 'promote': await this.queue.promote(jobId); break;
      case 'delete': {
        const job = await this.queue.deleteJob(jobId);
        this.data.getQueues(true).catch(() => undefined);
        return this.to(`${jobListHref('', { queue: job.queue, state: '', name: '', q: '', sort: 'newest' })}&notice=deleted`);
      }
    }
    this.data.getQueues(true).catch(() => undefined);
    return this.to(`/jobs/${jobId}?notice=${action === 'retry' ? 'retried' : action === 'cancel' ? 'cancelled' : 'promoted'}`);
  }

  @Post('queues/:queue/:action')
  @Redirect('.', 303)
  async queueAction(@Param('queue') queue: string, @Param('action') action: string, @Body() body: Form): Promise<Redirection> {
    if (!(await this.data.findQueue(queue))) throw new DashboardNotFoundException(`No queue named ${JSON.stringify(queue)}`);
    if (action === 'pause') await this.queue.pause(queue);
    else if (action === 'resume') await this.queue.resume(queue);
    else if (action === 'limits') await this.queue.updateQueue(queue, readLimits(body ?? {}));
    else throw new DashboardNotFoundException(`No action ${JSON.stringify(action)}`);
    await this.data.getQueues(true);
    return this.to(`?notice=${action === 'limits' ? 'limits' : action === 'pause' ? 'paused' : 'resumed'}`);
  }

  @Post('schedules/:key/:action')
  @Redirect('.', 303)
  async scheduleAction(@Param('key') key: string, @Param('action') action: string): Promise<Redirection> {
    if (action === 'pause') await this.queue.pauseSchedule(key);
    else if (action === 'resume') await this.queue.resumeSchedule(key);
    else if (action === 'trigger') await this.queue.triggerSchedule(key);
    else throw new DashboardNotFoundException(`No action ${JSON.stringify(action)}`);
    return this.to(`/schedules?notice=schedule-${action === 'trigger' ? 'triggered' : action === 'pause' ? 'paused' : 'resumed'}`);
  }

  /** "Retry this group" of the failures page: the failed jobs of a queue and name whose last error contains the group's message. */
  @Post('failures/retry')
  @Redirect('.', 303)
  async retryGroup(@Body() body: Form): Promise<Redirection> {
    const group = readFailureGroup(body ?? {});
    if (!(await this.data.findQueue(group.queue))) throw new DashboardNotFoundException(`No queue named ${JSON.stringify(group.queue)}`);
    const description = `failed ${group.name} jobs of ${group.queue}${group.message ? ` whose error contains "${group.message}"` : ''}`;
    const task = this.tasks.start('retry', description, (s, o) => this.queue.retryJobs(s, o), group.selection);
    return this.to(`/tasks/${task.id}`);
  }

  private runBulk(action: BulkAction, selection: JobSelection, options: BulkActionOptions): Promise<number> {
    switch (action) {
      case 'retry': return this.queue.retryJobs(selection, options);
      case 'cancel': return this.queue.cancelJobs(selection, options);
      case 'delete': return this.queue.deleteJobs(selection, options);
      case 'promote': return this.queue.promoteJobs(selection, options);
    }
  }

  private to(path: string): Redirection {
    return { url: `${this.renderer.base}${path}`, statusCode: 303 };
  }
}

function describe(list: { queue: string; state: string; name: string; q: string }): string {
  const parts = [list.queue && `queue ${list.queue}`, list.state && `state ${list.state}`, list.name && `name ${list.name}`, list.q && `matching "${list.q}"`].filter(Boolean);
  return `every job of ${parts.join(', ')}`;
}

/** The limits form: each limit's fields, empty meaning "remove the override". */
function readLimits(body: Form): QueueLimitsUpdate {
  const rate = (prefix: string) => {
    const max = optionalPositiveInt(body, `${prefix}Max`);
    const perMs = optionalPositiveInt(body, `${prefix}PerMs`);
    if ((max === null) !== (perMs === null)) throw new DashboardBadRequestException(`Invalid ${prefix}: give both the number of starts and the window (ms), or neither`);
    return max === null ? null : { max, perMs: perMs! };
  };
  return {
    globalConcurrency: optionalPositiveInt(body, 'globalConcurrency'),
    groupConcurrency: optionalPositiveInt(body, 'groupConcurrency'),
    rateLimit: rate('rateLimit'),
    groupRateLimit: rate('groupRateLimit'),
  };
}
