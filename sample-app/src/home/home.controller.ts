import { Controller, Get, Header } from '@nestjs/common';
import { QueueService } from '../../../lib';
import { renderHomePage, summarize } from './home.page';

/** `GET /`: a page to look at (see home.page.ts). */
@Controller()
export class HomeController {
  constructor(private readonly queue: QueueService) {}

  @Get()
  @Header('content-type', 'text/html; charset=utf-8')
  async home(): Promise<string> {
    const jobs = await this.queue.getJobs({ limit: 20 });
    return renderHomePage(jobs.map(summarize));
  }
}
