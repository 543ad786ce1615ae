import { QueueError } from './queue.error';

/**
 * A dependency cannot be honoured: `add(..., { dependsOn })` names jobs that do not exist
 * (`reason: 'not-found'`; nothing was stored), or `retry()` of a job whose dependency failed for good
 * would fail it again at once (`reason: 'dependency-failed'`; retry the dependency instead, which
 * puts this job back to blocked).
 */
export class JobDependencyError extends QueueError {
  constructor(
    readonly reason: 'not-found' | 'dependency-failed',
    /** The job being added (null) or retried. */
    readonly jobId: string | null,
    /** The dependencies at fault. */
    readonly dependencyIds: string[],
  ) {
    super(
      reason === 'not-found'
        ? `Invalid dependsOn: no job ${dependencyIds.join(', ')}; nothing was stored`
        : `Cannot retry job ${jobId}: its dependency ${dependencyIds.join(', ')} failed for good or was cancelled; retry that one, which puts job ${jobId} back to blocked`,
    );
  }
}
