import { DEFAULT_BACKOFF, DEFAULT_MAX_ATTEMPTS } from '../queue.constants';
import type { ClaimDefaults } from '../database/job.repository';
import type { RegisteredQueue } from '../discovery/handler.registry';
import type { ResolvedQueueOptions } from '../queue-options.resolver';

/** The run options a claim fixes into jobs that did not set them: processor's, else module's. */
export function claimDefaultsOf(options: ResolvedQueueOptions, registered: RegisteredQueue): ClaimDefaults {
  const module = options.defaultJobOptions;
  const processor = registered.options.defaultJobOptions ?? {};
  return {
    maxAttempts: processor.maxAttempts ?? module.maxAttempts ?? DEFAULT_MAX_ATTEMPTS,
    backoff: processor.backoff ?? module.backoff ?? DEFAULT_BACKOFF,
    timeoutMs: processor.timeoutMs ?? module.timeoutMs ?? null,
  };
}
