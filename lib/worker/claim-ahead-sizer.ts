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
 */
export class ClaimAheadSizer {
  private busyMs = 0;
  private completions = 0;
  private active = 0;
  private lastAt = performance.now();
  private rttMs = Number.NaN;

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

  /** How many jobs to hold ahead of the free slots now (0 to `max`). */
  target(concurrency: number, max: number): number {
    const slotMs = this.slotMs;
    if (Number.isNaN(slotMs) || Number.isNaN(this.rttMs)) return 0;
    if (this.completions >= DECAY_COMPLETIONS) {
      this.busyMs /= 2;
      this.completions /= 2;
    }
    // NOTE: a slot time of 0 (timer resolution) means as fast as can be: the cap decides.
    const wanted = slotMs > 0 ? Math.floor((2 * concurrency * this.rttMs) / slotMs) : max;
    return Math.max(0, Math.min(wanted, max));
  }

  private accrue(now: number): void {
    this.busyMs += this.active * (now - this.lastAt);
    this.lastAt = now;
  }
}
