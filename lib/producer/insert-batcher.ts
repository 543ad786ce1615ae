import type { JobRepository, NewJobRow } from '../database/job.repository';
import type { Job } from '../interfaces/job.interface';
import { isConnectionError } from '../database/database-errors';
import { BULK_CHUNK_SIZE, MAX_BATCH_BYTES } from '../queue.constants';

interface PendingInsert {
  row: NewJobRow;
  resolve: (job: Job) => void;
  reject: (error: unknown) => void;
}

/**
 * Splits rows into insert statements of at most `maxRows` rows and `maxBytes` of data (JSON text
 * length, a lower bound of its bytes that is exact for ASCII); a row bigger than `maxBytes` goes
 * alone. Rows keep their order. Lazy: a caller that needs only the first chunk reads only it.
 */
export function* chunkRows<T>(items: T[], data: (item: T) => string, maxRows = BULK_CHUNK_SIZE, maxBytes = MAX_BATCH_BYTES): Generator<T[]> {
  let chunk: T[] = [];
  let bytes = 0;
  for (const item of items) {
    const size = data(item).length;
    if (chunk.length > 0 && (chunk.length >= maxRows || bytes + size > maxBytes)) {
      yield chunk;
      chunk = [];
      bytes = 0;
    }
    chunk.push(item);
    bytes += size;
  }
  if (chunk.length > 0) yield chunk;
}

/**
 * Group commit for `add()` calls made outside a user transaction. An `add()` with nothing in
 * flight is inserted at once, alone: no added latency. The `add()` calls that arrive while an insert
 * is in flight are inserted together by the next statement, so concurrent producers share round
 * trips and commits (and the commit-time NOTIFY lock, which PostgreSQL holds across the WAL flush).
 *
 * Every row is validated before it gets here, and groups are bounded in rows and bytes, so a
 * statement should fail only for reasons that concern every row in it (the database unreachable or
 * refusing writes); then every `add()` of the group rejects with that error, and none is stored.
 * Should the database refuse a group for a reason of one row (a trigger or constraint of the
 * user's, say), each row of it is inserted alone, so only that row's caller gets the error.
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
        const batch: PendingInsert[] = chunkRows(this.waiting, (p) => p.row.data).next().value;
        this.waiting.splice(0, batch.length);
        await this.insertGroup(batch);
      }
    } finally {
      this.running = false;
    }
  }

  private async insertGroup(batch: PendingInsert[]): Promise<void> {
    let jobs: Job[];
    try {
      jobs = await (await this.repository()).insert(batch.map((p) => p.row));
    } catch (error) {
      if (batch.length === 1 || isConnectionError(error)) {
        for (const p of batch) p.reject(error);
        return;
      }
      // NOTE: refused for something in one row: one statement per row tells whose it is.
      for (const p of batch) await this.insertGroup([p]);
      return;
    }
    batch.forEach((p, i) => p.resolve(jobs[i]));
  }
}
