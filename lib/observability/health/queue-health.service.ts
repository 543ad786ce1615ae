import { Inject, Injectable } from '@nestjs/common';
import { QueueDatabase } from '../../database/queue-database';
import { MetricsRepository } from '../../database/metrics.repository';
import { QueueWorker } from '../../worker/worker.service';
import { RESOLVED_QUEUE_OPTIONS } from '../../queue.constants';
import type { QueueHealthReport } from '../../interfaces/observability.interface';
import type { ResolvedQueueOptions } from '../../queue-options.resolver';

/**
 * The health of the queue in this process: the database answers (within `health.timeoutMs`), this
 * process's worker runs and its LISTEN connection is up (when it has one), and, with
 * `health.maxPendingAgeMs`, no queue's oldest due job has waited longer. `QueueHealthIndicator`
 * (`nestjs-pg-queue/terminus`) reports it to `@nestjs/terminus`; usable on its own too.
 */
@Injectable()
export class QueueHealthService {
  private ages?: MetricsRepository;

  constructor(
    @Inject(RESOLVED_QUEUE_OPTIONS) private readonly options: ResolvedQueueOptions,
    private readonly database: QueueDatabase,
    private readonly worker: QueueWorker,
  ) {}

  /** Checks now; never rejects, and answers within about `health.timeoutMs` even with the database unreachable. */
  async check(): Promise<QueueHealthReport> {
    const { timeoutMs, maxPendingAgeMs } = this.options.health;
    const worker = this.worker.status();
    const started = performance.now();
    const report: QueueHealthReport = { healthy: false, database: { up: false, responseTimeMs: 0 }, worker, queues: {} };
    try {
      // NOTE: with a pending-age bound, its query is the database check (one round trip, not two).
      const ages = await withinMs(timeoutMs, maxPendingAgeMs === undefined ? this.ping() : this.oldestDueAges());
      report.database.up = true;
      if (ages) {
        const bounds = typeof maxPendingAgeMs === 'number' ? Object.fromEntries([...ages.keys()].map((q) => [q, maxPendingAgeMs])) : (maxPendingAgeMs ?? {});
        for (const [queue, max] of Object.entries(bounds)) {
          const age = ages.get(queue) ?? 0;
          report.queues[queue] = { oldestPendingAgeMs: age, maxPendingAgeMs: max, up: age <= max };
        }
      }
    } catch (error) {
      report.database.error = (error as Error)?.message ?? String(error);
    }
    report.database.responseTimeMs = Math.round(performance.now() - started);
    const workerUp = !worker.enabled || (worker.running && worker.listening !== false);
    report.healthy = report.database.up && workerUp && Object.values(report.queues).every((q) => q.up);
    return report;
  }

  private async ping(): Promise<undefined> {
    await (await this.database.getRepository()).runStatement('health', 'SELECT 1', []);
    return undefined;
  }

  private async oldestDueAges(): Promise<Map<string, number>> {
    if (!this.ages) {
      // NOTE: the ages are read for the queues of the registry; a queue bounded by name may have
      // no row there yet (no processor anywhere, never listed): given one, once.
      const bounds = this.options.health.maxPendingAgeMs;
      if (typeof bounds === 'object') await (await this.database.getRegistry()).register(Object.keys(bounds));
      this.ages = new MetricsRepository(await this.database.getRepository());
    }
    return this.ages.oldestDueAges();
  }
}

/** `promise`, or a rejection once `ms` passed (the statement itself stays bounded by queryTimeoutMs). */
function withinMs<T>(ms: number, promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`the database did not answer within ${ms} ms`)), ms).unref();
  });
  // NOTE: a late rejection of the abandoned statement must not go unhandled.
  promise.catch(() => undefined);
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
