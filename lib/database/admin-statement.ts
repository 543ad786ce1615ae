import type { JobRepository } from './job.repository';
import { queryOnClient } from './bounded-statement';
import { QueueDatabaseError } from '../errors/queue-database.error';
import { AdminQueryTimeoutError } from '../errors/admin-query-timeout.error';

/** SQLSTATE of a statement cancelled by statement_timeout. */
const QUERY_CANCELED = '57014';

/**
 * Runs one statement of the job management API in a transaction of its own under
 * `SET LOCAL statement_timeout` = `timeoutMs`: the database itself cancels a listing or bulk batch
 * that runs too long, so no dashboard user can keep a backend busy (the client-side bound alone
 * would leave the statement running on the server). A cancelled statement becomes an
 * {@link AdminQueryTimeoutError}; other errors leave translated, as every statement's do.
 */
export async function runAdminStatement<Row>(jobs: JobRepository, operation: string, timeoutMs: number, text: string, values: unknown[]): Promise<Row[]> {
  // NOTE: the client-side bound stays above the server's, so the server's (clean) cancel comes first.
  const bound = Math.max(jobs.settings.queryTimeoutMs, timeoutMs + 1000);
  try {
    return await jobs.inTransaction(operation, async (client) => {
      await queryOnClient(client, bound, `SELECT set_config('statement_timeout', $1, true)`, [`${timeoutMs}ms`]);
      return (await queryOnClient<Row & object>(client, bound, text, values)).rows;
    });
  } catch (error) {
    if (error instanceof QueueDatabaseError && error.sqlState === QUERY_CANCELED) throw new AdminQueryTimeoutError(operation, timeoutMs, { cause: error });
    throw error;
  }
}
