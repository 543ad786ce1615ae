import { Injectable, Logger } from '@nestjs/common';
import type { Job, JobProgress } from '../interfaces/job.interface';

/**
 * What happened to a job in this process, told after it is durable (the claim or the outcome write
 * was confirmed by the database; a fenced-out or dropped write tells nothing). `at` is this
 * process's clock (epoch ms) when the database confirmed it. An outcome of an attempt run here
 * carries `activeAt`, the `at` of that attempt's `active` event (so a listener times the run
 * without keeping a map of starts).
 */
export type JobLifecycleEvent =
  /** Claimed by this worker; its handler is about to run. */
  | { type: 'active'; job: Job; at: number }
  /** Completed; `result` is the JSON text written (`'null'` for none). */
  | { type: 'completed'; job: Job; at: number; result: string; activeAt?: number }
  /**
   * Failed for good (attempts spent, or not retryable; or, flows, a dependency failed: told by the
   * process whose write or cancel() failed the dependency); `error` is the JSON text written.
   */
  | { type: 'failed'; job: Job; at: number; error: string; activeAt?: number }
  /** Failed this attempt; due again in `delayMs`. */
  | { type: 'retrying'; job: Job; at: number; error: string; delayMs: number; activeAt?: number }
  /** Back to pending without counting the attempt: snoozed by its handler, handed back at shutdown,
   * or rate limited (its handler threw a RateLimitedError). */
  | { type: 'requeued'; job: Job; at: number; delayMs: number; reason: 'snooze' | 'shutdown' | 'rate-limited' }
  /** Its handler's `job.progress(value)` was stored; `progress` is the value. */
  | { type: 'progress'; job: Job; at: number; progress: JobProgress }
  /** Cancelled by this process's `QueueService.cancel()` (the job as it was cancelled). */
  | { type: 'cancelled'; job: Job; at: number }
  /** Its lease lapsed and this process's rescuer put it back (`job.state` pending) or failed it. */
  | { type: 'rescued'; job: JobRef; at: number }
  /**
   * Flows: blocked on its children or dependencies, inserted so (`addFlow`, `dependsOn`) or put back
   * by a `retry()` of the dependency that failed it; told by the process that inserted or retried.
   */
  | { type: 'blocked'; job: FlowEventJob; at: number }
  /** Flows: its last child or dependency completed (settled), so it is pending now; told by the process whose write released it. */
  | { type: 'unblocked'; job: FlowEventJob; at: number };

/** The few fields of a job that writers which do not read the whole row (rescue) know. */
export type JobRef = Pick<Job, 'id' | 'queue' | 'name' | 'attempts' | 'state'>;

/** What a flow event knows of its job (the database tells no more). */
export type FlowEventJob = Pick<Job, 'id' | 'queue' | 'name'>;

export type JobLifecycleListener = (event: JobLifecycleEvent) => void;

/** The kinds of lifecycle event (`JobLifecycleEvent['type']`). */
export type JobLifecycleEventType = JobLifecycleEvent['type'];

interface Subscription {
  listener: JobLifecycleListener;
  /** The kinds it is told; undefined for every kind. */
  types?: ReadonlySet<JobLifecycleEventType>;
}

/**
 * The internal hub of job lifecycle events in this process: the worker tells, features listen
 * (public queue events, metrics, rollups). Listeners are called synchronously, in order, and must
 * be cheap (queue their work); one that throws is logged and never breaks the worker or the other
 * listeners. With no listener, `emit` costs one length check.
 */
@Injectable()
export class JobLifecycle {
  private readonly logger = new Logger('QueueLifecycle');
  private subscriptions: Subscription[] = [];
  /** Some subscription takes every kind of event. */
  private hearsAll = false;
  /** The kinds the subscriptions with a list of kinds take. */
  private heard: ReadonlySet<JobLifecycleEventType> = new Set();

  /**
   * Adds a listener, told every kind of event or only those of `types`; returns the function that
   * removes it.
   */
  subscribe(listener: JobLifecycleListener, types?: readonly JobLifecycleEventType[]): () => void {
    const subscription: Subscription = { listener, types: types ? new Set(types) : undefined };
    this.subscriptions = [...this.subscriptions, subscription];
    this.recount();
    return () => {
      this.subscriptions = this.subscriptions.filter((s) => s !== subscription);
      this.recount();
    };
  }

  /** Whether anyone listens: lets the worker skip building an event nobody reads. */
  get active(): boolean {
    return this.subscriptions.length > 0;
  }

  /**
   * Whether anyone listens to events of `type`: lets the worker skip an event of the hot path
   * (`active`, one per attempt) that its listeners do not take, such as the outcome tally's.
   */
  hears(type: JobLifecycleEventType): boolean {
    return this.hearsAll || this.heard.has(type);
  }

  emit(event: JobLifecycleEvent): void {
    // NOTE: the array is replaced (never mutated) on subscribe/unsubscribe, so a listener that
    // unsubscribes during emit does not skip the next one.
    for (const { listener, types } of this.subscriptions) {
      if (types && !types.has(event.type)) continue;
      try {
        listener(event);
      } catch (error) {
        this.logger.error(`A job lifecycle listener threw on "${event.type}" of job ${event.job.id}: ${(error as Error)?.stack ?? error}`);
      }
    }
  }

  private recount(): void {
    this.hearsAll = this.subscriptions.some((s) => !s.types);
    this.heard = new Set(this.subscriptions.flatMap((s) => (s.types ? [...s.types] : [])));
  }
}
