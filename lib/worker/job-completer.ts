import { Logger } from '@nestjs/common';
import type { AttemptOutcome, JobRepository } from '../database/job.repository';
import { isTransientError } from '../database/database-errors';
import { MAX_OUTCOME_BATCH } from '../queue.constants';

/** What became of an outcome: written; fenced out (this worker no longer held the lease); or
 * dropped (the database stayed unreachable, or kept cancelling the write, past shutdown; or it
 * refused the write). */
export type WriteResult = 'written' | 'fenced' | 'dropped';

interface PendingWrite {
  outcome: AttemptOutcome;
  resolve: (result: WriteResult) => void;
}

const MAX_RETRY_DELAY_MS = 2000;

/**
 * Writes the outcomes of attempts (completed, failed, retry later, handed back) in batches: the
 * first outcome is written at once, and those that arrive while a write is in flight go together
 * in the next one — group commit, so no latency is added when idle and one statement serves many
 * jobs under load. Each write is fenced per job (see `finish` in the job statements).
 *
 * While the database is unreachable, or cancels the write for a reason that passes (a lock or
 * statement timeout, a serialization failure, a deadlock), outcomes wait in memory and the write is
 * retried: dropped, a finished job would be rescued and run again. A job whose outcome is never
 * written keeps its lease until it lapses and is then rescued (at-least-once).
 */
export class JobCompleter {
  private readonly logger = new Logger('QueueCompleter');
  private queue: PendingWrite[] = [];
  private flushing?: Promise<void>;
  private giveUpAt = Infinity;
  private failures = 0;

  constructor(
    private readonly repository: JobRepository,
    private readonly workerId: string,
  ) {}

  /** Resolves once the outcome is written, fenced out or dropped. */
  record(outcome: AttemptOutcome): Promise<WriteResult> {
    return new Promise((resolve) => {
      this.queue.push({ outcome, resolve });
      // NOTE: the first write waits for the end of the current event-loop turn (setImmediate), so
      // the outcomes of a whole claimed batch of quick jobs, which settle in the same turn, go in
      // one statement instead of "first one alone, then the rest".
      this.flushing ??= new Promise<void>((resolve) => setImmediate(resolve)).then(() => this.flush());
    });
  }

  /** After `deadline`, writes that fail are dropped instead of retried (shutdown). */
  async drain(deadline: number): Promise<void> {
    this.giveUpAt = deadline;
    while (this.flushing) await this.flushing;
  }

  private async flush(): Promise<void> {
    try {
      await this.writeQueued();
    } finally {
      // NOTE: cleared synchronously after the last check of the queue, so an outcome recorded at
      // any point either is taken by the loop or finds no flush in progress and starts one.
      this.flushing = undefined;
    }
  }

  private async writeQueued(): Promise<void> {
    while (this.queue.length > 0) await this.write(this.queue.splice(0, MAX_OUTCOME_BATCH));
  }

  private async write(batch: PendingWrite[]): Promise<void> {
    try {
      const written = await this.repository.finish(
        batch.map((p) => p.outcome),
        this.workerId,
      );
      if (this.failures > 0) this.logger.log('Outcome writes resumed');
      this.failures = 0;
      for (const p of batch) p.resolve(written.has(p.outcome.id) ? 'written' : 'fenced');
    } catch (error) {
      if (isTransientError(error)) {
        if (Date.now() < this.giveUpAt) {
          this.failures++;
          if (this.failures === 1) this.logger.warn(`Cannot write job outcomes (${(error as Error).message}); retrying`);
          this.queue.unshift(...batch);
          await new Promise((r) => setTimeout(r, Math.min(50 * 2 ** this.failures, MAX_RETRY_DELAY_MS)));
          return;
        }
        this.drop(batch, error);
      } else if (batch.length > 1) {
        // NOTE: the database refused the statement. One outcome it cannot take (a constraint of the
        // user's, say) must not cost the others theirs: halve the batch until that one is alone.
        const half = Math.ceil(batch.length / 2);
        await this.write(batch.slice(0, half));
        await this.write(batch.slice(half));
      } else {
        this.drop(batch, error);
      }
    }
  }

  private drop(batch: PendingWrite[], error: unknown): void {
    const which = batch.length === 1 ? `job ${batch[0].outcome.id}` : `${batch.length} job(s)`;
    this.logger.error(`Dropped the outcome of ${which}; the lease will lapse and the job will be rescued: ${(error as Error)?.stack ?? error}`);
    for (const p of batch) p.resolve('dropped');
  }
}
