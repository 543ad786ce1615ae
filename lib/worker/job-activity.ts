import type { JobRepository } from '../database/job.repository';
import { JobEventsRepository } from '../database/job-events.repository';
import type { Job, JobProgress } from '../interfaces/job.interface';
import { JobLifecycle } from './job-lifecycle';
import { JobLogWriter } from './job-log.writer';
import { JobProgressWriter } from './job-progress.writer';
import { logText, progressJson } from './job-activity.validator';

/**
 * What handlers report while they run (`job.progress()`, `job.log()`), for every attempt of this
 * worker: nothing is made until a handler first calls one of them.
 */
export class JobActivity {
  private events?: JobEventsRepository;
  private logs?: JobLogWriter;
  private readonly repository = async () => (this.events ??= new JobEventsRepository(this.jobs));

  constructor(
    private readonly jobs: JobRepository,
    private readonly workerId: string,
    private readonly lifecycle: JobLifecycle = new JobLifecycle(),
  ) {}

  /** The progress writer of one attempt (`job` is the attempt's job: its claim fences the writes). */
  progressWriter(job: Job): { update(value: JobProgress): Promise<boolean> } {
    const writer = new JobProgressWriter(job, this.repository, this.workerId, this.lifecycle);
    return { update: (value) => writer.update(progressJson(value)) };
  }

  log(jobId: string, text: string): Promise<void> {
    const { message, truncated } = logText(text);
    this.logs ??= new JobLogWriter(this.repository);
    return this.logs.append({ jobId, at: Date.now(), message, truncated });
  }

  /** Resolves once every log entry given so far is written or given up. */
  async drain(): Promise<void> {
    await this.logs?.drain();
  }
}
