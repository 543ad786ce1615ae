import { Logger } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import { Handle, Processor, type ActiveJob } from '../../../lib';
import type { WelcomeEmail } from '../signup/signup.service';

export interface FlakyReport {
  reportId?: number;
  /** Chance (0..1) that an attempt fails. Default 0.5. */
  failureRate?: number;
}

/**
 * Runs the jobs of the `email` queue, up to 5 at a time in this process. A failed attempt is
 * retried (5 attempts in all, 0.5 s, 1 s, 2 s, ... apart) unless the job was enqueued with its own
 * `maxAttempts` or `backoff`.
 */
@Processor('email', {
  concurrency: 5,
  defaultJobOptions: { maxAttempts: 5, backoff: { type: 'exponential', delayMs: 500, maxDelayMs: 5000 } },
})
export class EmailProcessor {
  private readonly logger = new Logger(EmailProcessor.name);

  @Handle('welcome')
  async welcome(job: ActiveJob<WelcomeEmail>): Promise<{ messageId: string }> {
    // A real app would call its mail provider here, passing job.signal so a timeout aborts it.
    const messageId = `<${randomUUID()}@sample.local>`;
    this.logger.log(`Job ${job.id}: sent welcome email to ${job.data.email} (${messageId})`);
    return { messageId };
  }

  @Handle('flaky-report')
  async flakyReport(job: ActiveJob<FlakyReport>): Promise<{ pages: number }> {
    const failureRate = job.data.failureRate ?? 0.5;
    if (Math.random() < failureRate) {
      this.logger.warn(`Job ${job.id}: report service unavailable, attempt ${job.attempts} of ${job.maxAttempts}`);
      throw new Error('Report service unavailable (simulated)');
    }
    this.logger.log(`Job ${job.id}: report ${job.data.reportId ?? '?'} done on attempt ${job.attempts}`);
    return { pages: 1 + Math.floor(Math.random() * 10) };
  }
}
