import { Injectable } from '@nestjs/common';
import { HealthIndicatorService, type HealthIndicatorResult } from '@nestjs/terminus';
import { QueueHealthService } from '../observability/health/queue-health.service';

/**
 * A `@nestjs/terminus` health indicator for the queue (terminus 11 or 12: its
 * `HealthIndicatorService` API). Add it to the providers of the module whose controller runs the
 * health check (which imports `TerminusModule`):
 *
 * ```ts
 * @Get('health') @HealthCheck()
 * check() { return this.health.check([() => this.queue.isHealthy('queue')]); }
 * ```
 *
 * Down when the database does not answer within `health.timeoutMs` (QueueModule option, default
 * 1 s), when this process's worker is not running or its LISTEN connection is down, or when a
 * queue's oldest due job has waited past `health.maxPendingAgeMs`. The details say which.
 */
@Injectable()
export class QueueHealthIndicator {
  constructor(
    private readonly health: QueueHealthService,
    private readonly indicators: HealthIndicatorService,
  ) {}

  /** The indicator's result under `key` (default `queue`): up or down, with the report's details. */
  async isHealthy<const Key extends string = 'queue'>(key: Key = 'queue' as Key): Promise<HealthIndicatorResult<Key>> {
    const { healthy, database, worker, queues } = await this.health.check();
    const session = this.indicators.check(key);
    const details = { database, worker, queues };
    return healthy ? session.up(details) : session.down(details);
  }
}
