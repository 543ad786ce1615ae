import type { Job } from '../../lib';
import { AttemptAbort } from '../../lib/worker/attempt-abort';
import { RunningJobs } from '../../lib/worker/running-jobs';

const job = (id: string, claims: number) => ({ id, claims }) as Job;

describe('RunningJobs: attempts keyed by job and claim', () => {
  it('keeps an older attempt of a job beside its newer claim, and removes either', () => {
    const running = new RunningJobs();
    const first = running.add(job('1', 1), new AttemptAbort(), 0);
    const second = running.add(job('1', 2), new AttemptAbort(), 0);
    const third = running.add(job('1', 3), new AttemptAbort(), 0);
    const other = running.add(job('2', 1), new AttemptAbort(), 0);
    expect(third.older).toBe(second);
    expect(second.older).toBe(first);
    expect(running.all()).toEqual(expect.arrayContaining([first, second, third, other]));
    expect(running.all()).toHaveLength(4);

    running.delete(second); // from the middle of the chain
    expect(third.older).toBe(first);
    expect(second.removed).toBe(true);
    running.delete(third); // the newest: the older one becomes the job's entry
    expect(running.all().filter((r) => r.job.id === '1')).toEqual([first]);
    running.delete(first);
    expect(running.has('1')).toBe(false);
    expect(running.has('2')).toBe(true);
    expect(running.all()).toEqual([other]);
  });
});
