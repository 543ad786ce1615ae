/** Settings of the sample app, read from the environment. */
export interface AppConfig {
  databaseUrl: string;
  /**
   * PostgreSQL schema of both the business table (`sample_users`) and the job table. It must exist
   * unless it is `public`; the tests give each run its own.
   */
  schema: string;
  port: number;
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): AppConfig {
  const port = Number(env.PORT ?? 3000);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`PORT must be a port number, got ${env.PORT}`);
  return {
    databaseUrl: env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test',
    schema: env.DB_SCHEMA ?? 'public',
    port,
  };
}
