import type { JobRepository, NewJobRow } from '../database/job.repository';
import type { Job } from '../interfaces/job.interface';
import { BULK_CHUNK_SIZE } from '../queue.constants';

interface PendingInsert {
  row: NewJobRow;
  resolve: (job: Job) => void;
  reject: (error: unknown) => void;
}

/**
 * Group commit for `add()` calls made outside a user transaction. An `add()` with nothing in
 * flight is inserted at once, alone: no added latency. The `add()` calls that arrive while an insert
 * is in flight are inserted together by the next statement, so concurrent producers share round
 * trips and commits (and the commit-time NOTIFY lock, which PostgreSQL holds across the WAL flush).
 *
 * Every row is validated before it gets here, so a statement fails only for reasons that concern
 * every row in it (the database unreachable or refusing writes); then every `add()` of the group
 * rejects with that error, and none of them is stored.
 */
export class InsertBatcher {
  private queue: PendingInsert[] = [];
  private running = false;

  constructor(private readonly repository: () => Promise<JobRepository>) {}

  insert(row: NewJobRow): Promise<Job> {
    return new Promise((resolve, reject) => {
      this.queue.push({ row, resolve, reject });
      if (!this.running) void this.run();
    });
  }

  private async run(): Promise<void> {
    this.running = true;
    try {
      while (this.queue.length > 0) {
        const batch = this.queue.splice(0, BULK_CHUNK_SIZE);
        try {
          const jobs = await (await this.repository()).insert(batch.map((p) => p.row));
          batch.forEach((p, i) => p.resolve(jobs[i]));
        } catch (error) {
          for (const p of batch) p.reject(error);
        }
      }
    } finally {
      this.running = false;
    }
  }
}
