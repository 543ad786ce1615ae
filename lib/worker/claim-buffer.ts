import type { RunningJob } from './running-jobs';

/** A job claimed ahead of a free slot: a real claimed row, active and leased to this worker. */
export interface BufferedJob {
  entry: RunningJob;
  /** When its claim statement was sent (its lease's lower bound). */
  claimedAt: number;
  /** When it entered the buffer (ms, `Date.now()`). */
  bufferedAt: number;
}

/** How long buffered jobs waited for a slot, for diagnostics and the benchmark. */
export interface ClaimBufferStats {
  /** Jobs that went from the buffer to a slot. */
  started: number;
  /** Their total and longest wait in the buffer (ms). */
  totalWaitMs: number;
  maxWaitMs: number;
  /** Jobs handed back from the buffer (attempt refunded): shutdown, pause, a stalled queue. */
  handedBack: number;
  /** Jobs dropped from the buffer without a write: cancelled, or their lease lost. */
  dropped: number;
}

/**
 * The jobs one queue's poller claimed ahead of its free slots, first in first out. Each is already
 * in {@link RunningJobs}, so the lease keeper renews it and a cancellation aborts it like a running
 * job; an aborted one is dropped here (never run), through `drop`.
 *
 * NOTE: a buffer that stops moving is handed back as a whole (`onStale`), so jobs never sit behind
 * handlers that all stalled while another worker could run them: when the oldest job has waited
 * `maxWaitMs` (one timer per buffer, armed for the oldest job only).
 */
export class ClaimBuffer {
  private jobs: BufferedJob[] = [];
  private head = 0;
  private timer?: NodeJS.Timeout;
  readonly stats: ClaimBufferStats = { started: 0, totalWaitMs: 0, maxWaitMs: 0, handedBack: 0, dropped: 0 };

  constructor(
    private readonly maxWaitMs: number,
    private readonly drop: (entry: RunningJob) => void,
    private readonly onStale: () => void,
  ) {}

  get size(): number {
    return this.jobs.length - this.head;
  }

  push(entry: RunningJob, claimedAt: number, now: number): void {
    this.jobs.push({ entry, claimedAt, bufferedAt: now });
    if (!this.timer) this.arm(this.maxWaitMs);
  }

  /** The next job still ours, or undefined when none is left; aborted ones are dropped on the way. */
  take(now: number): BufferedJob | undefined {
    while (this.head < this.jobs.length) {
      const next = this.jobs[this.head];
      this.jobs[this.head++] = undefined as unknown as BufferedJob;
      if (next.entry.abort.aborted) {
        this.stats.dropped++;
        this.drop(next.entry);
        continue;
      }
      const waited = now - next.bufferedAt;
      this.stats.started++;
      this.stats.totalWaitMs += waited;
      if (waited > this.stats.maxWaitMs) this.stats.maxWaitMs = waited;
      this.compact();
      return next;
    }
    this.clear();
    return undefined;
  }

  /** Empties the buffer: the jobs still ours, to be handed back; aborted ones are dropped. */
  takeAll(): BufferedJob[] {
    const left: BufferedJob[] = [];
    for (let i = this.head; i < this.jobs.length; i++) {
      const job = this.jobs[i];
      if (job.entry.abort.aborted) {
        this.stats.dropped++;
        this.drop(job.entry);
      } else left.push(job);
    }
    this.stats.handedBack += left.length;
    this.clear();
    return left;
  }

  /** Buffered jobs already aborted (cancelled, lease lost), to be dropped when reached (diagnostics). */
  countAborted(): number {
    let n = 0;
    for (let i = this.head; i < this.jobs.length; i++) if (this.jobs[i].entry.abort.aborted) n++;
    return n;
  }

  /** Stops the stale timer (the poller stops). */
  close(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  private clear(): void {
    this.jobs = [];
    this.head = 0;
    this.close();
  }

  private compact(): void {
    if (this.head > 1024 && this.head * 2 > this.jobs.length) {
      this.jobs = this.jobs.slice(this.head);
      this.head = 0;
    }
  }

  private arm(inMs: number): void {
    this.timer = setTimeout(() => {
      this.timer = undefined;
      if (this.size === 0) return;
      const oldest = this.jobs[this.head];
      const left = oldest.bufferedAt + this.maxWaitMs - Date.now();
      if (left > 0) this.arm(left);
      else this.onStale();
    }, inMs);
    this.timer.unref();
  }
}
