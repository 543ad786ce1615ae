import { Injectable, type OnApplicationShutdown } from '@nestjs/common';
import { JobLifecycle, type JobLifecycleEvent, type JobLifecycleEventType } from '../worker/job-lifecycle';
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
  /**
   * Since the process started, up to the minute being counted (kept when totals are asked for):
   * the hot path counts into `current` only, and a minute is added here when it closes or is taken.
   */
  total?: OutcomeCounts;
  /** The minute being counted and its counts. */
  minute: number;
  current?: OutcomeCounts;
}

const MINUTE_MS = 60_000;
/**
 * Most closed minutes held while nobody takes them (the database down for a long time); past it
 * the oldest are dropped rather than memory growing without bound.
 */
export const MAX_PENDING_MINUTES = 10_000;

/** The lifecycle events the tally counts: outcomes and rescues (not starts: see `record`). */
const COUNTED: readonly JobLifecycleEventType[] = ['completed', 'failed', 'retrying', 'rescued'];

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
 * Timings, both taken from the attempt's outcome event (one event per attempt on the hot path, no
 * map of starts): wait is due to started (`startedAt - runAt`, both the database's clock, so no
 * skew between hosts), counted for each attempt run here that ended with an outcome written here;
 * run is started to outcome written, on this process's clock (from the `activeAt` the event carries).
 */
@Injectable()
export class OutcomeTally implements OnApplicationShutdown {
  /** By queue, then job name. */
  private readonly entries = new Map<string, Map<string, Entry>>();
  private closed: MinuteCounts[] = [];
  private totals = false;
  private minutes = false;
  private unsubscribe?: () => void;

  constructor(private readonly lifecycle: JobLifecycle) {}

  /** Starts counting totals and/or minutes (each stays on once asked for, until `stop`). */
  enable(what: { totals?: boolean; minutes?: boolean }): void {
    this.totals ||= what.totals === true;
    this.minutes ||= what.minutes === true;
    this.unsubscribe ??= this.lifecycle.subscribe((event) => this.record(event), COUNTED);
  }

  /** NOTE: after every beforeApplicationShutdown, so the worker's last outcomes are still counted. */
  onApplicationShutdown(): void {
    this.unsubscribe?.();
    this.unsubscribe = undefined;
  }

  /** Every queue and name's totals since the process started. */
  allTotals(): { queue: string; name: string; counts: OutcomeCounts }[] {
    const all: { queue: string; name: string; counts: OutcomeCounts }[] = [];
    for (const byName of this.entries.values()) {
      for (const e of byName.values()) {
        if (!e.total) continue;
        let counts = e.total;
        if (e.current) {
          counts = emptyCounts();
          addCounts(counts, e.total);
          addCounts(counts, e.current);
        }
        all.push({ queue: e.queue, name: e.name, counts });
      }
    }
    return all;
  }

  /** The minutes counted since the last call (closed ones and the current one), handed over and forgotten. */
  takeMinutes(): MinuteCounts[] {
    const taken = this.closed;
    this.closed = [];
    for (const byName of this.entries.values()) {
      for (const e of byName.values()) {
        if (!e.current) continue;
        taken.push({ queue: e.queue, name: e.name, minute: e.minute, counts: e.current });
        if (e.total) addCounts(e.total, e.current);
        e.current = undefined;
      }
    }
    return taken;
  }

  /** Gives back minutes taken but not written (a failed write), to be taken again. */
  putBack(minutes: MinuteCounts[]): void {
    this.closed = [...minutes, ...this.closed];
    if (this.closed.length > MAX_PENDING_MINUTES) this.closed = this.closed.slice(-MAX_PENDING_MINUTES);
  }

  /**
   * NOTE: starts are not events of the tally: the wait of an attempt is read from its job at its
   * outcome (the same `startedAt` and `runAt`), which halves the events of the hot path. An
   * attempt that ends without an outcome written here (its process died, it was handed back or
   * snoozed) is in neither histogram.
   */
  private record(event: JobLifecycleEvent): void {
    switch (event.type) {
      case 'completed':
      case 'failed':
      case 'retrying': {
        const job = event.job;
        const counts = this.currentMinute(this.entryOf(job), event.at);
        // NOTE: an outcome not of an attempt run here (a flow's dependency failed it) has no
        // `activeAt`: not a wait of ours; its run is timed from its database start, if any.
        if (event.activeAt !== undefined && job.startedAt) observe(counts.wait, Math.max(0, job.startedAt.getTime() - job.runAt.getTime()));
        const start = event.activeAt ?? job.startedAt?.getTime() ?? event.at;
        countOutcome(counts, event.type, Math.max(0, event.at - start));
        return;
      }
      case 'rescued':
        countRescue(this.currentMinute(this.entryOf(event.job), event.at), event.job.state === 'failed');
        return;
      default:
        return;
    }
  }

  /**
   * The entry of `job`'s queue and name.
   *
   * NOTE: by queue, then name: two look-ups of strings the worker already holds, where one of a
   * joined key would build (and hash) a new string for every event, on the drain's hot path.
   */
  private entryOf(job: { queue: string; name: string }): Entry {
    let byName = this.entries.get(job.queue);
    if (!byName) {
      byName = new Map();
      this.entries.set(job.queue, byName);
    }
    let entry = byName.get(job.name);
    if (!entry) {
      entry = { queue: job.queue, name: job.name, minute: 0 };
      byName.set(job.name, entry);
    }
    return entry;
  }

  /**
   * The counts of `entry`'s minute of `at`, closing the minute it counted before if `at` is in a
   * newer one: added to the totals, and kept for the rollups' writer if minutes are asked for.
   */
  private currentMinute(entry: Entry, at: number): OutcomeCounts {
    const minute = at - (at % MINUTE_MS);
    if (entry.current && entry.minute !== minute) {
      if (this.totals) addCounts((entry.total ??= emptyCounts()), entry.current);
      if (this.minutes) {
        this.closed.push({ queue: entry.queue, name: entry.name, minute: entry.minute, counts: entry.current });
        if (this.closed.length > MAX_PENDING_MINUTES) this.closed.shift();
      }
      entry.current = undefined;
    }
    entry.minute = minute;
    if (this.totals) entry.total ??= emptyCounts();
    return (entry.current ??= emptyCounts());
  }
}

function countOutcome(c: OutcomeCounts, type: 'completed' | 'failed' | 'retrying', runMs: number): void {
  if (type === 'completed') c.completed++;
  else if (type === 'failed') c.failed++;
  else c.retried++;
  observe(c.run, runMs);
}

function countRescue(c: OutcomeCounts, failed: boolean): void {
  c.rescued++;
  if (failed) c.failed++;
}

function observe(t: TimingTally, ms: number): void {
  t.count++;
  t.sumMs += ms;
  t.buckets[bucketOf(ms)]++;
}
