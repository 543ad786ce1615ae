import { Client } from 'pg';

/** Where a connection URL points, without its password: `host:port/database`. */
export function describeDatabaseUrl(url: string): string {
  try {
    const parsed = new URL(url);
    return `${parsed.hostname}:${parsed.port || 5432}${parsed.pathname}`;
  } catch {
    return 'an invalid URL';
  }
}

/**
 * Connects once and disconnects. Rejects within about `timeoutMs` with a message naming the host
 * and port, instead of TypeORM's minute of retries with a stack each.
 */
export async function assertDatabaseReachable(url: string, timeoutMs = 5000): Promise<void> {
  const where = describeDatabaseUrl(url);
  const client = new Client({ connectionString: url, connectionTimeoutMillis: timeoutMs });
  // NOTE: a connection that dies later emits 'error'; without a listener it would crash the process.
  client.on('error', () => undefined);
  try {
    await client.connect();
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
    throw new Error(
      `Cannot reach PostgreSQL at ${where} (DATABASE_URL): ${reason}. ` +
        'Start that server, fix DATABASE_URL, or unset it so `npm start` runs an embedded PostgreSQL.',
    );
  } finally {
    await client.end().catch(() => undefined);
  }
}
