import { Injectable, type OnApplicationShutdown } from '@nestjs/common';
import { JobLifecycle, type JobLifecycleEvent } from '../worker/job-lifecycle';
import { STATS_BUCKET_COUNT, bucketOf } from './stats-buckets';

/** A fixed-bucket histogram of one timing (see STATS_BUCKET_BOUNDS_MS). */
export interface TimingTally {
  count: number;
  sumMs: number;
  buckets: number[];
}

/** What the jobs of one queue and name did (in one minute, or since the process started). */
export interface OutcomeCounts {
  completed: number;
  failed: number;
  retried: number;
  rescued: number;
  wait: TimingTally;
  run: TimingTally;
}

/** The counts of one queue, job name and minute (start, epoch ms). */
export interface MinuteCounts {
  queue: string;
  name: string;
  minute: number;
  counts: OutcomeCounts;
}

interface Entry {
  queue: string;
  name: string;
  /** Since the process started (kept when totals are asked for). */
  total?: OutcomeCounts;
  /** The minute being counted and its counts (kept when minutes are asked for). */
  minute: number;
  current?: OutcomeCounts;
}

const MINUTE_MS = 60_000;
/**
 * Most attempt start times kept for run times. An attempt whose outcome never comes here (its
 * lease was lost) leaves its start behind; past this many the oldest half is forgotten, and an
 * attempt whose start is forgotten is timed from its database `startedAt`.
 */
const MAX_STARTS = 100_000;
/**
 * Most closed minutes held while nobody takes them (the database down for a long time); past it
 * the oldest are dropped rather than memory growing without bound.
 */
export const MAX_PENDING_MINUTES = 10_000;

export function emptyCounts(): OutcomeCounts {
  return {
    completed: 0,
    failed: 0,
    retried: 0,
    rescued: 0,
    wait: { count: 0, sumMs: 0, buckets: new Array<number>(STATS_BUCKET_COUNT).fill(0) },
    run: { count: 0, sumMs: 0, buckets: new Array<number>(STATS_BUCKET_COUNT).fill(0) },
  };
}

/** Adds `from` into `into`. */
export function addCounts(into: OutcomeCounts, from: OutcomeCounts): void {
  into.completed += from.completed;
  into.failed += from.failed;
  into.retried += from.retried;
  into.rescued += from.rescued;
  for (const t of ['wait', 'run'] as const) {
    into[t].count += from[t].count;
    into[t].sumMs += from[t].sumMs;
    for (let i = 0; i < STATS_BUCKET_COUNT; i++) into[t].buckets[i] += from[t].buckets[i];
  }
}

/**
 * The one listener of the lifecycle hub behind the rollups and the Prometheus metrics: it counts
 * this process's outcomes and timings per queue and job name, as totals (for Prometheus) and per
 * minute (for the rollups), so each job costs one map look-up and a few increments whatever reads
 * them. It listens only once a reader enabled it.
 *
 * Timings: wait is due to started (`startedAt - runAt`, both the database's clock, so no skew
 * between hosts); run is started to outcome written, on this process's clock (from its `active`
 * event).
 */
@Injectable()
export class OutcomeTally implements OnApplicationShutdown {
  private readonly entries = new Map<string, Entry>();
  private starts = new Map<string, number>();
  private closed: MinuteCounts[] = [];
  private totals = false;
  private minutes = false;
  private unsubscribe?: () => void;

  constructor(private readonly lifecycle: JobLifecycle) {}

  /** Starts counting totals and/or minutes (each stays on once asked for, until `stop`). */
  enable(what: { totals?: boolean; minutes?: boolean }): void {
    this.totals ||= what.totals === true;
    this.minutes ||= what.minutes === true;
    this.unsubscribe ??= this.lifecycle.subscribe((event) => this.record(event));
  }

  /** NOTE: after every beforeApplicationShutdown, so the worker's last outcomes are still counted. */
  onApplicationShutdown(): void {
    this.unsubscribe?.();
    this.unsubscribe = undefined;
  }

  /** Every queue and name's totals since the process started. */
  allTotals(): { queue: string; name: string; counts: OutcomeCounts }[] {
    const all: { queue: string; name: string; counts: OutcomeCounts }[] = [];
    for (const e of this.entries.values()) if (e.total) all.push({ queue: e.queue, name: e.name, counts: e.total });
    return all;
  }

  /** The minutes counted since the last call (closed ones and the current one), handed over and forgotten. */
  takeMinutes(): MinuteCounts[] {
    const taken = this.closed;
    this.closed = [];
    for (const e of this.entries.values()) {
      if (!e.current) continue;
      taken.push({ queue: e.queue, name: e.name, minute: e.minute, counts: e.current });
      e.current = undefined;
    }
    return taken;
  }

  /** Gives back minutes taken but not written (a failed write), to be taken again. */
  putBack(minutes: MinuteCounts[]): void {
    this.closed = [...minutes, ...this.closed];
    if (this.closed.length > MAX_PENDING_MINUTES) this.closed = this.closed.slice(-MAX_PENDING_MINUTES);
  }

  private record(event: JobLifecycleEvent): void {
    switch (event.type) {
      case 'active': {
        const job = event.job;
        if (this.starts.size >= MAX_STARTS) this.forgetOldStarts();
        this.starts.set(job.id, event.at);
        const wait = job.startedAt ? Math.max(0, job.startedAt.getTime() - job.runAt.getTime()) : 0;
        this.each(job, event.at, (c) => observe(c.wait, wait));
        return;
      }
      case 'completed':
      case 'failed':
      case 'retrying': {
        const job = event.job;
        const start = this.starts.get(job.id) ?? job.startedAt?.getTime() ?? event.at;
        this.starts.delete(job.id);
        const run = Math.max(0, event.at - start);
        const type = event.type;
        this.each(job, event.at, (c) => {
          if (type === 'completed') c.completed++;
          else if (type === 'failed') c.failed++;
          else c.retried++;
          observe(c.run, run);
        });
        return;
      }
      case 'rescued': {
        const failed = event.job.state === 'failed';
        this.each(event.job, event.at, (c) => {
          c.rescued++;
          if (failed) c.failed++;
        });
        return;
      }
      default:
        // requeued (snooze, shutdown hand-back): not an outcome; its start is replaced by the next attempt's.
        return;
    }
  }

  /** Applies `change` to the totals and the current minute of `job`'s queue and name. */
  private each(job: { queue: string; name: string }, at: number, change: (counts: OutcomeCounts) => void): void {
    const key = `${job.queue}\u0000${job.name}`;
    let entry = this.entries.get(key);
    if (!entry) {
      entry = { queue: job.queue, name: job.name, minute: 0 };
      this.entries.set(key, entry);
    }
    if (this.totals) change((entry.total ??= emptyCounts()));
    if (this.minutes) {
      const minute = at - (at % MINUTE_MS);
      if (entry.current && entry.minute !== minute) {
        this.closed.push({ queue: entry.queue, name: entry.name, minute: entry.minute, counts: entry.current });
        if (this.closed.length > MAX_PENDING_MINUTES) this.closed.shift();
        entry.current = undefined;
      }
      entry.minute = minute;
      change((entry.current ??= emptyCounts()));
    }
  }

  private forgetOldStarts(): void {
    // NOTE: a Map iterates in insertion order: the first half holds the oldest starts.
    const kept = new Map<string, number>();
    let i = 0;
    for (const [id, at] of this.starts) if (i++ >= MAX_STARTS / 2) kept.set(id, at);
    this.starts = kept;
  }
}

function observe(t: TimingTally, ms: number): void {
  t.count++;
  t.sumMs += ms;
  t.buckets[bucketOf(ms)]++;
}
