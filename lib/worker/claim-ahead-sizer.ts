import { performance } from 'node:perf_hooks';

/** Completions a queue must have seen before it claims ahead at all. */
const MIN_COMPLETIONS = 8;
/** Past this many completions, the measurements are halved, so the estimate follows changes. */
const DECAY_COMPLETIONS = 256;
/** Weight of the newest claim round trip in its moving average. */
const RTT_WEIGHT = 0.2;

/**
 * How many jobs one queue's poller may hold claimed ahead of its free slots, from two figures it
 * measures itself:
 *
 * - the claim round trip `R` (claim sent to rows parsed), a moving average;
 * - the time a job holds its slot `H`, by Little's law: slot-time in use divided by completions,
 *   the in-use time of handlers still running included (a handler that hangs raises `H` before it
 *   returns).
 *
 * The slots free `C / H` jobs per ms, so `C · R / H` jobs are taken while one claim is in flight.
 * The buffer holds twice that and is refilled when it is down to half, so a claim lands before
 * it runs dry, and a buffered job waits about one round trip on average. A queue whose handlers
 * take longer than about two round trips per slot (`2 · C · R / H < 1`) gets no buffer at all, and
 * nor does a queue that has not yet seen {@link MIN_COMPLETIONS} jobs finish.
 *
 * NOTE: when the process, not the slots, is the bottleneck (quick handlers on a busy CPU), jobs
 * go through slower than `C / H`: the buffer is also bounded by twice the throughput measured
 * between claims times `R`. It starts from what the free slots alone achieve and grows by about
 * a factor of three per claim while the throughput keeps up, like a slow start. The throughput's
 * average weighs each new figure by how long it was measured over (`1 - e^(-t / 2R)`), so after a
 * pause in the work (an idle queue) it starts again from what the slots alone achieve: a queue that
 * was quick yesterday does not claim a full buffer of today's slow jobs.
 *
 * NOTE: and the figure it was made for is checked: when the jobs that left the buffer since the
 * last sizing waited longer than `R` on average (a stalling event loop, a burst of GC), the
 * buffer is scaled down in proportion (by half at most per claim); it grows back by a quarter
 * per claim while they wait less (or none went through it).
 */
export class ClaimAheadSizer {
  private busyMs = 0;
  private completions = 0;
  private active = 0;
  private lastAt = performance.now();
  private rttMs = Number.NaN;
  /** Completions per ms between the last two sizings, a moving average. */
  private rate = Number.NaN;
  private ratedAt = performance.now();
  private ratedCompletions = 0;
  /** Share of the computed size in use, from the buffered jobs' measured waits (see above). */
  private scale = 1;

  /** A handler took a slot. */
  started(): void {
    this.accrue(performance.now());
    this.active++;
  }

  /** A handler gave its slot back. */
  finished(): void {
    this.accrue(performance.now());
    this.active--;
    this.completions++;
  }

  /** A claim took `ms` from send to rows. */
  claimed(ms: number): void {
    this.rttMs = Number.isNaN(this.rttMs) ? ms : this.rttMs + RTT_WEIGHT * (ms - this.rttMs);
  }

  /** The measured round trip (ms), NaN before the first claim. */
  get roundTripMs(): number {
    return this.rttMs;
  }

  /** The measured time a job holds its slot (ms), NaN before enough completions. */
  get slotMs(): number {
    this.accrue(performance.now());
    return this.completions < MIN_COMPLETIONS ? Number.NaN : this.busyMs / this.completions;
  }

  /**
   * How many jobs to hold ahead of the free slots now (0 to `max`). `recentWaitMs` is the mean wait
   * in the buffer of the jobs that left it since the last call (NaN when none did).
   */
  target(concurrency: number, max: number, recentWaitMs = Number.NaN): number {
    // NOTE: it also grows back when no buffered job started (NaN), or a buffer scaled to nothing
    // would never get the measurement that lets it grow.
    if (recentWaitMs > this.rttMs) this.scale *= Math.max(0.5, this.rttMs / recentWaitMs);
    else this.scale = Math.min(1, this.scale * 1.25);
    const rate = this.measureRate();
    const slotMs = this.slotMs;
    if (Number.isNaN(slotMs) || Number.isNaN(this.rttMs) || Number.isNaN(rate)) return 0;
    if (this.completions >= DECAY_COMPLETIONS) {
      this.busyMs /= 2;
      this.completions /= 2;
      this.ratedCompletions /= 2;
    }
    // NOTE: a slot time of 0 (timer resolution) means as fast as can be: the other bounds decide.
    const bySlots = slotMs > 0 ? Math.floor((2 * concurrency * this.rttMs) / slotMs) : max;
    const byRate = Math.floor(2 * rate * this.rttMs);
    return Math.max(0, Math.floor(this.scale * Math.min(bySlots, byRate, max)));
  }

  /** Updates and returns the throughput average (completions per ms since the last sizing). */
  private measureRate(): number {
    const now = performance.now();
    const elapsed = now - this.ratedAt;
    if (elapsed <= 0) return this.rate;
    const latest = (this.completions - this.ratedCompletions) / elapsed;
    const weight = Number.isNaN(this.rttMs) ? 1 : 1 - Math.exp(-elapsed / Math.max(1, 2 * this.rttMs));
    this.rate = Number.isNaN(this.rate) ? latest : this.rate + weight * (latest - this.rate);
    this.ratedAt = now;
    this.ratedCompletions = this.completions;
    return this.rate;
  }

  private accrue(now: number): void {
    this.busyMs += this.active * (now - this.lastAt);
    this.lastAt = now;
  }
}
