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
  private waiting: PendingInsert[] = [];
  private running = false;

  constructor(private readonly repository: () => Promise<JobRepository>) {}

  insert(row: NewJobRow): Promise<Job> {
    // The lone add() of a sequential producer goes straight to the database: no queue to pass
    // through, no promise of its own to settle.
    if (!this.running) return this.insertAlone(row);
    return new Promise((resolve, reject) => {
      this.waiting.push({ row, resolve, reject });
    });
  }

  private async insertAlone(row: NewJobRow): Promise<Job> {
    this.running = true;
    try {
      const [job] = await (await this.repository()).insert([row]);
      return job;
    } finally {
      this.running = false;
      if (this.waiting.length > 0) void this.drain();
    }
  }

  /** Inserts what arrived during the previous insert, in groups, until nothing is waiting. */
  private async drain(): Promise<void> {
    this.running = true;
    try {
      while (this.waiting.length > 0) {
        const batch = this.waiting.splice(0, BULK_CHUNK_SIZE);
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
