import type { JobRepository } from './job.repository';
import { runAdminStatement } from './admin-statement';
import { toJob, type RawJobRow } from './job-row.mapper';
import { buildListStatement, type JobQuery, type SortKeys } from './sql/job-search.statements';
import type { Job } from '../interfaces/job.interface';
import type { JobSort } from '../interfaces/job-admin.interface';

/** A row of a listing: the job and its sort keys (see `buildListStatement`). */
type ListedRow = RawJobRow & { _kp?: number; _kt?: string; _hit?: boolean; _n?: string };

/** One page as the repository finds it: jobs, and the keys the next page starts after. */
export interface FoundPage<T, R> {
  jobs: Job<T, R>[];
  /** The keys of the last job of the page (or of the last job examined), or null: no next page. */
  next: SortKeys | null;
  scanLimited: boolean;
}

/** Listing and searching jobs for the job management API, every query under the admin statement timeout. */
export class JobSearchRepository {
  constructor(
    private readonly jobs: JobRepository,
    private readonly timeoutMs: number,
  ) {}

  async findPage<T, R>(query: JobQuery, sort: JobSort, cursor: SortKeys | null, limit: number, scanLimit: number): Promise<FoundPage<T, R>> {
    const { text, values } = buildListStatement(this.jobs.naming, this.jobs.statements, query, sort, cursor, limit, scanLimit);
    const rows = await runAdminStatement<ListedRow>(this.jobs, 'listJobs', this.timeoutMs, text, values);
    const keysOf = (row: ListedRow): SortKeys => ({ id: String(row.id), priority: row._kp, micros: row._kt });
    const hits = rows[0]?._hit === undefined ? rows : rows.filter((row) => row._hit);
    if (hits.length > limit) return { jobs: hits.slice(0, limit).map((row) => toJob<T, R>(row)), next: keysOf(hits[limit - 1]), scanLimited: false };
    // NOTE: `_n` is a bigint (text); the last examined row of a scan that reached its limit.
    const edge = rows.find((row) => row._n !== undefined && Number(row._n) === scanLimit);
    return { jobs: hits.map((row) => toJob<T, R>(row)), next: edge ? keysOf(edge) : null, scanLimited: edge !== undefined };
  }
}
