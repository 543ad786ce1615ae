import { Logger } from '@nestjs/common';
import { ActiveJob, Handle, Processor } from 'nestjs-pg-queue';

@Processor('email', { concurrency: 5 })
export class EmailProcessor {
  private readonly logger = new Logger(EmailProcessor.name);

  @Handle('welcome')
  async welcome(job: ActiveJob<{ to: string }>) {
    // Send the email here; pass job.signal to fetch() so a timeout or cancel aborts it.
    this.logger.log(`Welcome email to ${job.data.to} (job ${job.id}, attempt ${job.attempts})`);
    return { sentAt: new Date().toISOString() };
  }
}
