import type { EntityManager } from 'typeorm';
import { ActiveJob, type Job, type JobChild } from '../interfaces/job.interface';
import type { AttemptAbort } from './attempt-abort';
import { JobSnooze } from './job-snooze';

type TransactionRunner = <X>(work: (manager: EntityManager) => Promise<X>) => Promise<X>;

/** Where `getChildren()` reads from (the flow repository). */
export interface ChildrenSource {
  children(id: string): Promise<JobChild[]>;
}

/**
 * The object a handler receives: the job's fields, plus `signal` (created on first read) and
 * `transaction()`. A class rather than an object literal with a getter, so every job shares one
 * prototype and nothing is allocated for what the handler does not use.
 */
export class ActiveJobView extends ActiveJob {
  readonly #abort: AttemptAbort;
  readonly #transaction: TransactionRunner;
  readonly #children: ChildrenSource;

  constructor(job: Job, abort: AttemptAbort, transaction: TransactionRunner, children: ChildrenSource) {
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
    this.lockedBy = job.lockedBy;
    this.lockedUntil = job.lockedUntil;
    this.parentId = job.parentId;
    this.#abort = abort;
    this.#transaction = transaction;
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

  override getChildren(): Promise<JobChild[]> {
    return this.#children.children(this.id);
  }
}
