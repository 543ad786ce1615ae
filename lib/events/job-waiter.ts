import { Injectable } from '@nestjs/common';
import { QueueDatabase } from '../database/queue-database';
import { GlobalEventReceiver } from './global-event-receiver';
import { JobNotFoundError } from '../errors/job-not-found.error';
import { WaitForJobTimeoutError } from '../errors/wait-for-job-timeout.error';
import { JobState, type Job } from '../interfaces/job.interface';

/** How often a waiter reads the job when notifications work (the fallback), and when they cannot. */
export const WAIT_POLL_MS = 1000;
export const WAIT_POLL_WITHOUT_LISTEN_MS = 250;

const FINISHED: ReadonlySet<string> = new Set([JobState.Completed, JobState.Failed, JobState.Cancelled]);

/**
 * `QueueService.waitForJob()`: resolves with the job once it is completed, failed or cancelled,
 * wherever it runs. It listens for the job's global finishing events (which makes writers send
 * them) and reads the job on each, and also every {@link WAIT_POLL_MS} in case a notification was
 * missed. Everything it registered is released when it settles.
 */
@Injectable()
export class JobWaiter {
  constructor(
    private readonly database: QueueDatabase,
    private readonly receiver: GlobalEventReceiver,
  ) {}

  async wait<T, R>(id: string, timeoutMs: number): Promise<Job<T, R>> {
    const repository = await this.database.getRepository();
    return new Promise<Job<T, R>>((resolve, reject) => {
      let settled = false;
      let reading: Promise<void> | undefined;
      let again = false;
      let lastState: string | null = null;
      let lastError: unknown;
      const finish = (outcome: () => void) => {
        if (settled) return;
        settled = true;
        clearTimeout(deadline);
        clearInterval(poll);
        release?.();
        outcome();
      };
      // NOTE: reads never overlap; a notification during a read makes it read once more.
      const read = (): void => {
        if (settled) return;
        if (reading) {
          again = true;
          return;
        }
        reading = (async () => {
          do {
            again = false;
            try {
              const job = await repository.findById<T, R>(id);
              if (!job) return finish(() => reject(new JobNotFoundError(id)));
              lastState = job.state;
              if (FINISHED.has(job.state)) return finish(() => resolve(job));
            } catch (error) {
              // NOTE: the database may come back before the deadline: keep trying.
              lastError = error;
            }
          } while (again && !settled);
        })().finally(() => (reading = undefined));
      };
      const release = this.receiver.watch(id, () => read());
      const poll = setInterval(read, release ? WAIT_POLL_MS : WAIT_POLL_WITHOUT_LISTEN_MS);
      const deadline = setTimeout(() => {
        finish(() => {
          const error = new WaitForJobTimeoutError(id, timeoutMs, lastState);
          if (lastError && lastState === null) (error as Error & { cause?: unknown }).cause = lastError;
          reject(error);
        });
      }, timeoutMs);
      read();
    });
  }
}
