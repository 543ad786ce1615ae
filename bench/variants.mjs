// Diagnostics only (profile.mjs): candidate changes to the library, applied to the compiled code at
// run time so their effect can be measured before anyone edits lib/. The benchmark itself
// (run.mjs) never applies them. Each one keeps the statements' fencing conditions unchanged.
import { ROOT, require } from './common.mjs';

/**
 * Claim: `WHERE j.id = ANY(ARRAY(<the same locking subquery>))` instead of `WITH next AS (...)
 * UPDATE ... FROM next WHERE j.id = next.id`. The subquery becomes an InitPlan evaluated once (so it
 * still locks and claims at most $2 rows), and the update is always a primary-key lookup per id, where
 * the join form lets the planner pick a hash join over a sequential scan of the whole table (or a
 * merge join over the whole primary key), whose cost grows with every finished job kept.
 */
export const claimAnyArray = (claim) => {
  const out = claim.replace(
    /WITH next AS \(([\s\S]*?)\)\s*UPDATE (\S+) AS j SET([\s\S]*?)FROM next WHERE j\.id = next\.id/,
    (_, sub, t, set) => `UPDATE ${t} AS j SET${set}WHERE j.id = ANY(ARRAY(${sub}))`,
  );
  if (out === claim) throw new Error('claimAnyArray: the claim statement has changed shape');
  return out;
};

/** Insert without the NOTIFY (what an insert costs when nothing needs waking). */
export const insertNoNotify = (insert) => {
  const out = insert
    .replace(/, woken AS \([\s\S]*?GROUP BY queue\)/, '')
    .replace(/, \(SELECT count\(\*\) FROM woken\) AS "_woken"/, '');
  if (out === insert) throw new Error('insertNoNotify: the insert statement has changed shape');
  return out;
};

/** Insert that sends back only the count, not the rows. */
export const insertNoRowsBack = (insert) => {
  const out = insert.replace(
    /SELECT inserted\.\*, \(SELECT count\(\*\) FROM woken\) AS "_woken" FROM inserted ORDER BY id/,
    'SELECT count(*) AS n FROM inserted, (SELECT count(*) FROM woken) w',
  );
  if (out === insert) throw new Error('insertNoRowsBack: the insert statement has changed shape');
  return out;
};

/** Statement patches, applied to a JobRepository's `statements`. */
export const STATEMENT_VARIANTS = {
  claim_any_array: (s) => (s.claim = claimAnyArray(s.claim)),
  insert_no_notify: (s) => (s.insert = insertNoNotify(s.insert)),
  insert_no_rows_back: (s) => (s.insert = insertNoRowsBack(s.insert)),
};

/** Class patches, applied once per process before the app boots. */
export const CLASS_VARIANTS = {
  /**
   * Completer: start a write on the next macrotask instead of synchronously, so the outcomes of
   * every handler that finished in the same turn of the event loop go in one statement (now the
   * first one is written alone and the rest in a second statement). Fencing unchanged.
   */
  completer_next_tick: () => {
    const { JobCompleter } = require(`${ROOT}/dist/lib/worker/job-completer.js`);
    JobCompleter.prototype.record = function (outcome) {
      return new Promise((resolve) => {
        this.queue.push({ outcome, resolve });
        this.flushing ??= new Promise((r) => setImmediate(r))
          .then(() => this.flush())
          .finally(() => (this.flushing = undefined));
      });
    };
  },
};

CLASS_VARIANTS.finish_unnamed = () => {
  /**
   * Run `finish` and `heartbeat` as unnamed statements, so each is planned with its real arrays
   * (a custom plan: hash join of the batch with the worker's active rows). As named prepared
   * statements, PostgreSQL switches to a generic plan after 5 runs: a nested loop that rescans the
   * unnest() of the whole batch for every active row of the worker, O(batch x active).
   */
  const { JobRepository } = require(`${ROOT}/dist/lib/database/job.repository.js`);
  const original = JobRepository.prototype.statementName;
  JobRepository.prototype.statementName = function (text) {
    if (text === this.statements.finish || text === this.statements.heartbeat) return undefined;
    return original.call(this, text);
  };
};

CLASS_VARIANTS.release_slot_before_write = () => {
  /**
   * Executor: give the job's concurrency slot back as soon as its outcome is handed to the completer,
   * not once the outcome is written, so the poller claims the next batch while the previous batch's
   * outcomes are being written (claims and writes overlap instead of alternating). The job stays in
   * RunningJobs (its lease is still renewed) until the write is done; fencing is unchanged.
   */
  const { JobExecutor } = require(`${ROOT}/dist/lib/worker/job-executor.js`);
  const original = JobExecutor.prototype.execute;
  JobExecutor.prototype.execute = function (job, afterAttempt) {
    let released = false;
    const release = (retryInMs) => {
      if (released) return;
      released = true;
      afterAttempt?.(job, retryInMs);
    };
    const completer = this.completer;
    const self = Object.create(this, {
      completer: {
        value: {
          record: (outcome) => {
            const written = completer.record(outcome);
            release(outcome.state === 'pending' && !outcome.refund ? outcome.delayMs : undefined);
            return written;
          },
        },
      },
    });
    return original.call(self, job, (_job, retryInMs) => release(retryInMs));
  };
};

/**
 * Producer patches, for profile.mjs enqueue (applied in the producer's process; each returns an undo).
 */
export const PRODUCER_VARIANTS = {
  /**
   * add(): group commit on the producer side. add() calls that arrive while an insert is in flight
   * go together in the next insert (the same multi-row statement addBulk uses): one commit and one
   * NOTIFY for many jobs. Each add() still resolves with its own job once committed.
   */
  producer_group_insert: () => {
    const { QueueService } = require(`${ROOT}/dist/lib/producer/queue.service.js`);
    const original = QueueService.prototype.add;
    QueueService.prototype.add = function (queue, name, data, options = {}) {
      if (options.manager) return original.call(this, queue, name, data, options);
      let row;
      try {
        row = this.toRow(queue, name, data, options, 'data');
      } catch (error) {
        return Promise.reject(error);
      }
      const group = (this.benchGroup ??= { pending: [], flushing: undefined });
      return new Promise((resolve, reject) => {
        group.pending.push({ row, resolve, reject });
        // NOTE: `flushing` is cleared in the same synchronous step that sees the queue empty; clearing
        // it in a .finally() (a microtask later) would strand an add() made by a continuation of
        // the last batch's resolve (a sequential producer does exactly that).
        group.flushing ??= (async () => {
          try {
            const repository = await this.database.getRepository();
            while (group.pending.length > 0) {
              const batch = group.pending.splice(0, 1000);
              try {
                const jobs = await repository.insert(batch.map((b) => b.row));
                jobs.forEach((job, k) => batch[k].resolve(job));
                for (const job of jobs) this.wakeups.wake(job.queue, this.dueInMs(job));
              } catch (error) {
                for (const b of batch) b.reject(error);
              }
            }
          } finally {
            group.flushing = undefined;
          }
        })();
      });
    };
    return () => (QueueService.prototype.add = original);
  },
  /**
   * Insert without the NOTIFY, then `SELECT pg_notify(...)` as a separate statement after the commit,
   * so the inserts no longer hold the cluster-wide lock NOTIFY takes at commit (PreCommit_Notify)
   * across their WAL flush and can group-commit again. The notify-only transaction still gets an XID
   * and flushes a small commit record under that lock. Costs one more round trip per add().
   */
  notify_after_commit: () => {
    const { JobRepository } = require(`${ROOT}/dist/lib/database/job.repository.js`);
    const original = JobRepository.prototype.insert;
    JobRepository.prototype.insert = async function (rows, manager) {
      if (manager) return original.call(this, rows, manager);
      const saved = this.statements.insert;
      this.benchNoNotify ??= insertNoNotify(saved);
      this.statements.insert = this.benchNoNotify;
      let jobs;
      try {
        jobs = await original.call(this, rows);
      } finally {
        this.statements.insert = saved;
      }
      const soonest = new Map();
      for (const job of jobs) soonest.set(job.queue, Math.min(soonest.get(job.queue) ?? Infinity, Math.max(0, job.runAt.getTime() - Date.now())));
      for (const [queue, inMs] of soonest) {
        await this.pool.query({ name: 'bench_notify', text: 'SELECT pg_notify($1, $2)', values: [this.naming.channel, JSON.stringify({ t: 'job', q: queue, in: inMs })] });
      }
      return jobs;
    };
    return () => (JobRepository.prototype.insert = original);
  },
};

/** Applies the named variants; statement variants need the repository (see worker-child.mjs). */
export function applyClassVariants(names = []) {
  for (const name of names) CLASS_VARIANTS[name]?.();
}

export function applyStatementVariants(repository, names = []) {
  for (const name of names) STATEMENT_VARIANTS[name]?.(repository.statements);
}

export function assertKnownVariants(names = []) {
  const unknown = names.filter((n) => !STATEMENT_VARIANTS[n] && !CLASS_VARIANTS[n]);
  if (unknown.length) throw new Error(`unknown variant(s): ${unknown.join(', ')}`);
}
