import type { EntityManager } from 'typeorm';
import { ActiveJob, type Job } from '../interfaces/job.interface';
import type { AttemptAbort } from './attempt-abort';

type TransactionRunner = <X>(work: (manager: EntityManager) => Promise<X>) => Promise<X>;

/**
 * The object a handler receives: the job's fields, plus `signal` (created on first read) and
 * `transaction()`. A class rather than an object literal with a getter, so every job shares one
 * prototype and nothing is allocated for what the handler does not use.
 */
export class ActiveJobView extends ActiveJob {
  readonly #abort: AttemptAbort;
  readonly #transaction: TransactionRunner;

  constructor(job: Job, abort: AttemptAbort, transaction: TransactionRunner) {
    super();
    Object.assign(this, job);
    this.#abort = abort;
    this.#transaction = transaction;
  }

  override get signal(): AbortSignal {
    return this.#abort.signal;
  }

  override transaction<X>(work: (manager: EntityManager) => Promise<X>): Promise<X> {
    return this.#transaction(work);
  }
}
