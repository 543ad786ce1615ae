import { Controller, Get, Header, Redirect } from '@nestjs/common';
import { QueueService } from '../../../lib';
import { renderHomePage, summarize } from './home.page';

/** `GET /` leads to the queue dashboard; `GET /demo`: a page with demo buttons (see home.page.ts). */
@Controller()
export class HomeController {
  constructor(private readonly queue: QueueService) {}

  @Get()
  @Redirect('/queues', 302)
  root(): void {}

  @Get('demo')
  @Header('content-type', 'text/html; charset=utf-8')
  async home(): Promise<string> {
    const jobs = await this.queue.getJobs({ limit: 20 });
    return renderHomePage(jobs.map(summarize));
  }
}
