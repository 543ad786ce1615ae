import { Body, Controller, Get, HttpCode, HttpStatus, NotFoundException, Param, Post, Query } from '@nestjs/common';
import { QueueService } from '../../../lib';
import { parseEnqueueRequest } from './enqueue-request';
import { summarize } from '../home/home.page';

/**
 * A small admin API over QueueService. Bad ids, names and options come back as 400, unknown jobs
 * as 404 and impossible transitions (cancel a completed job) as 409, via QueueErrorFilter.
 */
@Controller('jobs')
export class JobsController {
  constructor(private readonly queue: QueueService) {}

  /** Enqueues any job, e.g. {"queue":"email","name":"flaky-report","data":{"reportId":7}}. */
  @Post()
  add(@Body() body: unknown) {
    const { queue, name, data, options } = parseEnqueueRequest(body);
    return this.queue.add(queue, name, data, options);
  }

  /** The 20 latest jobs, newest first, as the page at `GET /` lists them. Declared before :id. */
  @Get('latest')
  async latest() {
    return (await this.queue.getJobs({ limit: 20 })).map(summarize);
  }

  /** Jobs per state, of one queue (?queue=email) or all. Declared before :id so it is not taken for one. */
  @Get('counts')
  counts(@Query('queue') queue?: string) {
    return this.queue.getCounts(queue);
  }

  @Get(':id')
  async get(@Param('id') id: string) {
    const job = await this.queue.getJob(id);
    if (!job) throw new NotFoundException(`Job ${id} does not exist`);
    return job;
  }

  @Post(':id/cancel')
  @HttpCode(HttpStatus.OK)
  cancel(@Param('id') id: string) {
    return this.queue.cancel(id);
  }

  @Post(':id/retry')
  @HttpCode(HttpStatus.OK)
  retry(@Param('id') id: string) {
    return this.queue.retry(id);
  }
}
