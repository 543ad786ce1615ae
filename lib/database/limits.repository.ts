import type { JobRepository } from './job.repository';
import { buildLimitsStatements, type LimitsStatements } from './sql/limits.statements';

/** The blocks a RateLimitedError sets, and the upkeep of the groups table (see `buildLimitsStatements`). */
export class LimitsRepository {
  private readonly statements: LimitsStatements;

  constructor(private readonly jobs: JobRepository) {
    this.statements = buildLimitsStatements(jobs.naming);
  }

  /** No job of `queue` starts on any node for `ms`. */
  async blockQueue(queue: string, ms: number): Promise<void> {
    await this.jobs.runStatement('rateLimit', this.statements.blockQueue, [queue, ms]);
  }

  /** No job of job `jobId`'s group starts on any node for `ms`; false when the job has no group. */
  async blockGroup(jobId: string, ms: number): Promise<boolean> {
    const [row] = await this.jobs.runStatement<{ grouped: boolean }>('rateLimit', this.statements.blockGroup, [jobId, ms]);
    return row?.grouped ?? false;
  }

  /** Deletes up to `limit` group rows idle for `ageMs`; returns how many. */
  async deleteStaleGroups(ageMs: number, limit: number): Promise<number> {
    return (await this.jobs.runStatement('groupCleanup', this.statements.deleteStaleGroups, [ageMs, limit])).length;
  }
}
