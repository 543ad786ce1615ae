import { Injectable } from '@nestjs/common';
import { GlobalEventReceiver } from './global-event-receiver';
import { JobEventsStore } from './job-events.store';
import { JobNotFoundError } from '../errors/job-not-found.error';
import { WaitForJobTimeoutError } from '../errors/wait-for-job-timeout.error';
import { JobState, type Job } from '../interfaces/job.interface';

/** How often the waits read their jobs when notifications work (the fallback), and when they cannot. */
export const WAIT_POLL_MS = 1000;
export const WAIT_POLL_WITHOUT_LISTEN_MS = 250;

const FINISHED: ReadonlySet<string> = new Set([JobState.Completed, JobState.Failed, JobState.Cancelled]);

/** One `waitForJob()` in progress. */
interface Wait {
  id: string;
  /** Settles the wait if `job` (null: it does not exist) is finished or gone. */
  consider(job: Job | null): void;
  /** A read failed (kept for the timeout error). */
  failed(error: unknown): void;
}

/**
 * `QueueService.waitForJob()`: resolves with the job once it is completed, failed or cancelled,
 * wherever it runs. Each wait listens for its job's global finishing events (which makes writers
 * send them) and reads the job on each. As the fallback, every {@link WAIT_POLL_MS} one statement
 * reads the jobs of all the waits of this process, however many. Everything a wait registered is
 * released when it settles.
 */
@Injectable()
export class JobWaiter {
  private readonly waits = new Set<Wait>();
  private poll?: NodeJS.Timeout;
  private polling = false;

  constructor(
    private readonly store: JobEventsStore,
    private readonly receiver: GlobalEventReceiver,
  ) {}

  async wait<T, R>(id: string, timeoutMs: number): Promise<Job<T, R>> {
    const repository = await this.store.get();
    return new Promise<Job<T, R>>((resolve, reject) => {
      let settled = false;
      let lastState: string | null = null;
      let lastError: unknown;
      let reading = false;
      let again = false;
      const wait: Wait = {
        id,
        consider: (job) => {
          if (!job) return finish(() => reject(new JobNotFoundError(id)));
          lastState = job.state;
          if (FINISHED.has(job.state)) finish(() => resolve(job as Job<T, R>));
        },
        failed: (error) => (lastError = error),
      };
      const finish = (outcome: () => void) => {
        if (settled) return;
        settled = true;
        clearTimeout(deadline);
        this.waits.delete(wait);
        if (this.waits.size === 0) this.stopPolling();
        release?.();
        outcome();
      };
      // NOTE: reads of one wait never overlap; a notification during a read makes it read once more.
      const read = (): void => {
        if (settled) return;
        if (reading) {
          again = true;
          return;
        }
        reading = true;
        void (async () => {
          do {
            again = false;
            try {
              wait.consider(await repository.findJob(id));
            } catch (error) {
              // NOTE: the database may come back before the deadline: keep trying.
              wait.failed(error);
            }
          } while (again && !settled);
          reading = false;
        })();
      };
      const release = this.receiver.watch(id, read);
      const deadline = setTimeout(() => {
        finish(() => {
          const error = new WaitForJobTimeoutError(id, timeoutMs, lastState);
          if (lastError && lastState === null) (error as Error & { cause?: unknown }).cause = lastError;
          reject(error);
        });
      }, timeoutMs);
      this.waits.add(wait);
      this.startPolling(release ? WAIT_POLL_MS : WAIT_POLL_WITHOUT_LISTEN_MS);
      read();
    });
  }

  /** How many waits are in progress (for tests: none once every wait settled). */
  get size(): number {
    return this.waits.size;
  }

  private startPolling(intervalMs: number): void {
    if (this.poll) return;
    this.poll = setInterval(() => void this.pollAll(), intervalMs);
  }

  private stopPolling(): void {
    clearInterval(this.poll);
    this.poll = undefined;
  }

  /** The fallback: one statement for the jobs of every wait in progress. */
  private async pollAll(): Promise<void> {
    if (this.polling || this.waits.size === 0) return;
    this.polling = true;
    const waits = [...this.waits];
    try {
      const jobs = await (await this.store.get()).findJobs([...new Set(waits.map((w) => w.id))]);
      for (const wait of waits) wait.consider(jobs.get(wait.id) ?? null);
    } catch (error) {
      for (const wait of waits) wait.failed(error);
    } finally {
      this.polling = false;
    }
  }
}
