import type { EntityManager } from 'typeorm';
import { ActiveJob, type Job, type JobChild, type JobProgress } from '../interfaces/job.interface';
import type { AttemptAbort } from './attempt-abort';
import type { JobActivity } from './job-activity';
import { JobSnooze } from './job-snooze';

type TransactionRunner = <X>(work: (manager: EntityManager) => Promise<X>) => Promise<X>;

/** Where `getChildren()` reads from (the flow repository). */
export interface ChildrenSource {
  children(id: string): Promise<JobChild[]>;
}

/**
 * The object a handler receives: the job's fields, plus `signal` (created on first read),
 * `transaction()`, `snooze()`, `progress()` and `log()`. A class rather than an object literal with a getter, so every job shares one
 * prototype and nothing is allocated for what the handler does not use.
 */
export class ActiveJobView extends ActiveJob {
  readonly #abort: AttemptAbort;
  readonly #transaction: TransactionRunner;
  readonly #activity: JobActivity;
  #progress?: { update(value: JobProgress): Promise<boolean> };
  readonly #children: ChildrenSource;

  constructor(job: Job, abort: AttemptAbort, transaction: TransactionRunner, activity: JobActivity, children: ChildrenSource) {
    super();
    // NOTE: assigned one by one, in one order, rather than with Object.assign: every view then has
    // the same hidden class, which keeps property access fast and allocation cheap per job.
    this.id = job.id;
    this.queue = job.queue;
    this.name = job.name;
    this.data = job.data;
    this.state = job.state;
    this.attempts = job.attempts;
    this.claims = job.claims;
    this.maxAttempts = job.maxAttempts;
    this.priority = job.priority;
    this.runAt = job.runAt;
    this.backoff = job.backoff;
    this.timeoutMs = job.timeoutMs;
    this.createdAt = job.createdAt;
    this.startedAt = job.startedAt;
    this.finishedAt = job.finishedAt;
    this.result = job.result;
    this.lastError = job.lastError;
    this.uniqueKey = job.uniqueKey;
    this.group = job.group;
    this.scheduledFor = job.scheduledFor;
    this.scheduleKey = job.scheduleKey;
    this.lockedBy = job.lockedBy;
    this.lockedUntil = job.lockedUntil;
    this.parentId = job.parentId;
    this.#abort = abort;
    this.#transaction = transaction;
    this.#activity = activity;
    this.#progress = undefined;
    this.#children = children;
  }

  override get signal(): AbortSignal {
    return this.#abort.signal;
  }

  override transaction<X>(work: (manager: EntityManager) => Promise<X>): Promise<X> {
    return this.#transaction(work);
  }

  override snooze(delayMs: number): JobSnooze {
    return JobSnooze.of(delayMs);
  }

  override progress(value: JobProgress): Promise<boolean> {
    // NOTE: the writer (and its coalescing state) exists only for attempts that report progress.
    this.#progress ??= this.#activity.progressWriter(this);
    return this.#progress.update(value);
  }

  override log(text: string): Promise<void> {
    return this.#activity.log(this.id, text);
  }

  override getChildren(): Promise<JobChild[]> {
    return this.#children.children(this.id);
  }
}
