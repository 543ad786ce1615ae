import type { Job, JobState, QueueService } from '../../../lib';
import { waitFor } from './wait-for';

/** Waits until the job reaches `state` and returns it. */
export function waitForJobState(queue: QueueService, id: string, state: JobState | `${JobState}`, timeoutMs = 15_000): Promise<Job> {
  return waitFor(`job ${id} to be ${state}`, async () => {
    const job = await queue.getJob(id);
    return job?.state === state ? job : undefined;
  }, timeoutMs);
}
