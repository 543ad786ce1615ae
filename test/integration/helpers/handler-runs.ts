import type { ActiveJob } from '../../../lib';

/** One run of a handler body, as the handler itself saw it. */
export interface HandlerRun {
  id: string;
  claim: number;
  worker: string | null;
  started: number;
  ended?: number;
  /** When its `job.signal` fired, and why. */
  aborted?: number;
  reason?: unknown;
}

/**
 * Records when handler bodies run, so a test can count how many ran at once, or whether two runs
 * of one job overlapped. A handler calls `start(job)` first and `end(run)` when its body is done.
 */
export class HandlerRuns {
  readonly runs: HandlerRun[] = [];
  private running = 0;
  /** Most handler bodies running at the same time so far. */
  maxConcurrent = 0;

  start(job: ActiveJob): HandlerRun {
    const run: HandlerRun = { id: job.id, claim: job.claims, worker: job.lockedBy, started: Date.now() };
    this.runs.push(run);
    this.running++;
    this.maxConcurrent = Math.max(this.maxConcurrent, this.running);
    job.signal.addEventListener('abort', () => {
      run.aborted = Date.now();
      run.reason = job.signal.reason;
    }, { once: true });
    return run;
  }

  end(run: HandlerRun): void {
    run.ended = Date.now();
    this.running--;
  }

  of(id: string): HandlerRun[] {
    return this.runs.filter((r) => r.id === id);
  }

  /** Pairs of runs of the same job whose bodies overlapped in time. */
  overlaps(): [HandlerRun, HandlerRun][] {
    const found: [HandlerRun, HandlerRun][] = [];
    for (const a of this.runs) {
      for (const b of this.runs) {
        if (a !== b && a.id === b.id && a.started <= b.started && b.started < (a.ended ?? Infinity)) found.push([a, b]);
      }
    }
    return found;
  }
}

/** Resolves after `ms`, or as soon as `signal` aborts (when one is given). */
export function pause(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => {
      clearTimeout(timer);
      resolve();
    }, { once: true });
  });
}
