import type { Pool, PoolClient, QueryConfig, QueryResult } from 'pg';
import { isConnectionError, translateDatabaseError } from './database-errors';
import { QueryTimeoutError } from '../errors/query-timeout.error';

/**
 * The work of one bounded run on a pooled client: start the statement, call `finish` once with its
 * outcome, and `progress` whenever the server shows it is still at it (a COPY's pieces), which
 * restarts the bound.
 */
export type BoundedWork<T> = (client: PoolClient, finish: (error: Error | null, result?: T) => void, progress: () => void) => void;

const ignore = () => undefined;

/**
 * Runs `work` on a client of `pool` within `timeoutMs`, from asking for the client to the answer.
 * Past the bound the promise rejects with a `QueueUnavailableError` (cause {@link QueryTimeoutError})
 * and the client is destroyed, not given back: a statement may still be running on it, so its
 * state is unknown. A client the pool hands out after the bound is given back untouched.
 *
 * NOTE: callbacks and one timer, no promise per step: this carries every hot-path statement. A
 * bound on progress re-arms only when the timer fires, so `progress` costs one clock read.
 */
export function runBounded<T>(pool: Pool, operation: string, timeoutMs: number, work: BoundedWork<T>): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let client: PoolClient | undefined;
    let settled = false;
    let lastProgress = 0;
    const finish = (error: Error | null, result?: T) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (client) {
        const failed = error !== null && isConnectionError(error);
        if (!failed) client.off('error', ignore);
        // NOTE: pg-pool destroys a client given back with an error: right only when the connection
        // itself failed (a statement error leaves it usable).
        client.release(failed ? error : undefined);
      }
      if (error) reject(translateDatabaseError(operation, error));
      else resolve(result as T);
    };
    const onTimeout = () => {
      const idleFor = lastProgress === 0 ? timeoutMs : Date.now() - lastProgress;
      if (idleFor < timeoutMs) {
        timer = setTimeout(onTimeout, timeoutMs - idleFor).unref();
        return;
      }
      if (client) destroyConnection(client);
      finish(new QueryTimeoutError(timeoutMs, client ? 'answer' : 'connection'));
    };
    // NOTE: unref'd, like pg-pool's own connect timeout: a statement in flight keeps the process
    // alive through its socket; the bound alone must not (a process exiting with a call still
    // waiting for a pool slot exits as it did before there was a bound).
    let timer = setTimeout(onTimeout, timeoutMs).unref();
    pool.connect((error, acquired) => {
      if (settled) {
        acquired?.release();
        return;
      }
      if (error || !acquired) {
        finish(error ?? new Error('the pool handed out no client'));
        return;
      }
      client = acquired;
      // NOTE: a checked-out client that loses its connection emits 'error' besides failing its
      // query; unheard, that event would crash the process. The query's error is what is reported.
      // Kept on a destroyed client, which may still emit once it is out of our hands.
      acquired.on('error', ignore);
      try {
        work(acquired, finish, () => (lastProgress = Date.now()));
      } catch (thrown) {
        finish(thrown as Error);
      }
    });
  });
}

/** Runs one plain statement (a pg `QueryConfig`) within the bound; see {@link runBounded}. */
export function queryBounded(pool: Pool, operation: string, timeoutMs: number, config: QueryConfig): Promise<QueryResult> {
  return runBounded<QueryResult>(pool, operation, timeoutMs, (client, finish) => {
    client.query(config, finish);
  });
}

/**
 * Runs one statement on a client already checked out (a transaction's), within `timeoutMs`; past it
 * the connection is destroyed and the promise rejects with a {@link QueryTimeoutError}, which the
 * caller gives back to the pool as a connection failure.
 */
export function queryOnClient<R extends object = Record<string, unknown>>(client: PoolClient, timeoutMs: number, text: string, values?: unknown[]): Promise<QueryResult<R>> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      destroyConnection(client);
      reject(new QueryTimeoutError(timeoutMs, 'answer'));
    }, timeoutMs).unref();
    client.query<R>(text, values ?? [], (error, result) => {
      clearTimeout(timer);
      if (error) reject(error);
      else resolve(result);
    });
  });
}

/** Checks out a client within `timeoutMs` (one handed out later is given back untouched). */
export function acquireBounded(pool: Pool, timeoutMs: number): Promise<PoolClient> {
  return new Promise((resolve, reject) => {
    let late = false;
    const timer = setTimeout(() => {
      late = true;
      reject(new QueryTimeoutError(timeoutMs, 'connection'));
    }, timeoutMs).unref();
    pool.connect((error, client) => {
      if (late) return void client?.release();
      clearTimeout(timer);
      if (error || !client) reject(error ?? new Error('the pool handed out no client'));
      else resolve(client);
    });
  });
}

/**
 * Closes a client's socket at once. `end()` would send Terminate and wait for the server's
 * goodbye, which on a silent network never comes.
 */
export function destroyConnection(client: PoolClient): void {
  client.on('error', ignore);
  (client as unknown as { connection?: { stream?: { destroy(): void } } }).connection?.stream?.destroy();
}
