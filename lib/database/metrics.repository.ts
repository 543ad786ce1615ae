import type { JobRepository } from './job.repository';
import { buildMetricsStatements, type MetricsStatements } from './sql/metrics.statements';

/** The reads behind the Prometheus gauges that the queue registry's counts do not cover. */
export class MetricsRepository {
  private readonly statements: MetricsStatements;

  constructor(private readonly jobs: JobRepository) {
    this.statements = buildMetricsStatements(jobs.naming);
  }

  /** Age (ms) of the oldest due pending job of each registered queue; 0 for a queue with none due. */
  async oldestDueAges(): Promise<Map<string, number>> {
    const rows = await this.jobs.runScript<{ queue: string; age_ms: number | null }>('metrics', this.statements.oldestDue);
    return new Map(rows.map((r) => [r.queue, Math.max(0, Number(r.age_ms ?? 0))]));
  }
}
