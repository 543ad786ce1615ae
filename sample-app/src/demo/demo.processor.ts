import { Logger } from '@nestjs/common';
import { setTimeout as sleep } from 'node:timers/promises';
import { Handle, Processor, type ActiveJob } from '../../../lib';

export interface SlowJob {
  /** How long the job works, in seconds (default 30); cancel it meanwhile from the page. */
  seconds?: number;
}

/**
 * The `demo` queue of the page at `GET /`: a job that fails twice and then succeeds (3 attempts,
 * 1 s apart), and a slow job that stops as soon as it is cancelled (its `signal` aborts).
 */
@Processor('demo', { concurrency: 3, defaultJobOptions: { maxAttempts: 3, backoff: { type: 'fixed', delayMs: 1000 } } })
export class DemoProcessor {
  private readonly logger = new Logger(DemoProcessor.name);

  @Handle('fails-twice')
  failsTwice(job: ActiveJob): { succeededOnAttempt: number } {
    if (job.attempts <= 2) {
      this.logger.warn(`Job ${job.id}: failing on purpose, attempt ${job.attempts}`);
      throw new Error(`Failing on purpose (attempt ${job.attempts} of 3; attempt 3 succeeds)`);
    }
    return { succeededOnAttempt: job.attempts };
  }

  @Handle('slow')
  async slow(job: ActiveJob<SlowJob>): Promise<{ workedSeconds: number }> {
    const seconds = Math.min(Math.max(Number(job.data.seconds ?? 30), 0), 600);
    // NOTE: the signal aborts on cancel(), timeout and shutdown; sleep() then rejects with its reason.
    await sleep(seconds * 1000, undefined, { signal: job.signal });
    return { workedSeconds: seconds };
  }
}
