import { QueueError } from './queue.error';

/**
 * A dependency cannot be honoured: `add(..., { dependsOn })` names jobs that do not exist
 * (`reason: 'not-found'`; nothing was stored), or `retry()` of a job whose dependency failed for good
 * would fail it again at once (`reason: 'dependency-failed'`; retry the dependency instead, which
 * puts this job back to blocked); or `deleteJob()` of a job that an unfinished job depends on
 * (`reason: 'needed'`, `dependencyIds` empty: its dependent would wait for it forever).
 */
export class JobDependencyError extends QueueError {
  constructor(
    readonly reason: 'not-found' | 'dependency-failed' | 'needed',
    /** The job being added (null), retried or deleted. */
    readonly jobId: string | null,
    /** The dependencies at fault. */
    readonly dependencyIds: string[],
  ) {
    super(
      reason === 'not-found'
        ? `Invalid dependsOn: no job ${dependencyIds.join(', ')}; nothing was stored`
        : reason === 'needed'
          ? `Cannot delete job ${jobId}: an unfinished job depends on it (flows); delete or cancel that one first`
          : `Cannot retry job ${jobId}: its dependency ${dependencyIds.join(', ')} failed for good or was cancelled; retry that one, which puts job ${jobId} back to blocked`,
    );
  }
}
