import { Logger } from '@nestjs/common';
import type { JobEventsRepository, NewLogEntry } from '../database/job-events.repository';

/** Most entries one statement carries. */
const MAX_LOG_BATCH = 1000;
/** Most entries waiting in memory (the database being slow or away); the oldest go first. */
const MAX_WAITING_LOGS = 20_000;

interface WaitingEntry extends NewLogEntry {
  done: () => void;
}

/**
 * Writes the `job.log()` entries of every attempt of this process in batches (group commit, as the
 * completer does): the first at the end of the current turn of the event loop, then whatever
 * gathered while a write was in flight, so logging many lines costs one statement per batch, not
 * a round trip each. A batch the database refuses is logged and given up (logs are best effort;
 * the handler is never failed for them).
 */
export class JobLogWriter {
  private readonly logger = new Logger('QueueWorker');
  private waiting: WaitingEntry[] = [];
  private flushing?: Promise<void>;

  constructor(private readonly repository: () => Promise<JobEventsRepository>) {}

  append(entry: NewLogEntry): Promise<void> {
    return new Promise((done) => {
      this.waiting.push({ ...entry, done });
      if (this.waiting.length > MAX_WAITING_LOGS) {
        const dropped = this.waiting.splice(0, this.waiting.length - MAX_WAITING_LOGS);
        this.logger.warn(`Dropped ${dropped.length} job log entries: more than ${MAX_WAITING_LOGS} were waiting to be written`);
        for (const d of dropped) d.done();
      }
      this.flushing ??= new Promise<void>((resolve) => setImmediate(resolve)).then(() => this.flush());
    });
  }

  /** Resolves once nothing waits (shutdown). */
  async drain(): Promise<void> {
    while (this.flushing) await this.flushing;
  }

  private async flush(): Promise<void> {
    try {
      while (this.waiting.length > 0) {
        const batch = this.waiting.splice(0, MAX_LOG_BATCH);
        try {
          await (await this.repository()).appendLogs(batch);
        } catch (error) {
          this.logger.warn(`Could not write ${batch.length} job log entries: ${(error as Error)?.message ?? error}`);
        }
        for (const entry of batch) entry.done();
      }
    } finally {
      this.flushing = undefined;
    }
  }
}
