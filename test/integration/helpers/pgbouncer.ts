import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from 'pg';
import { DATABASE_URL } from './database';
import { waitFor } from './wait-for';
import { freePort, isAlive } from './child-process';

/**
 * A real PgBouncer (Debian's package; `.ci/run` installs it) in front of the test database, on a
 * free port, with its own ini, userlist, log and pid file in a temp folder. It refuses to run as
 * root, so as root it is started as the `postgres` user. Stop it in afterAll.
 */
export class PgBouncer {
  private dir?: string;
  port = 0;

  constructor(private readonly settings: { poolMode: 'transaction' | 'session'; defaultPoolSize: number }) {}

  /** The DATABASE_URL through this bouncer. */
  get url(): string {
    const u = new URL(DATABASE_URL);
    u.hostname = '127.0.0.1';
    u.port = String(this.port);
    return u.toString();
  }

  async start(): Promise<void> {
    const binary = findBinary();
    const target = new URL(DATABASE_URL);
    const database = target.pathname.slice(1) || 'postgres';
    this.port = await freePort();
    const dir = mkdtempSync(join(tmpdir(), 'pgq-pgbouncer-'));
    this.dir = dir;
    const ini = join(dir, 'pgbouncer.ini');
    writeFileSync(join(dir, 'userlist.txt'), `"${decodeURIComponent(target.username || 'postgres')}" ""\n`);
    writeFileSync(
      ini,
      [
        '[databases]',
        // NOTE: the server may ask for a password (the embedded PostgreSQL does): the bouncer then
        // logs in with the test database's own credentials; clients are trusted by the bouncer.
        `${database} = host=${target.hostname} port=${target.port || 5432} dbname=${database}` +
          (target.password ? ` user=${decodeURIComponent(target.username || 'postgres')} password='${decodeURIComponent(target.password).replace(/'/g, "\\'")}'` : ''),
        '[pgbouncer]',
        'listen_addr = 127.0.0.1',
        `listen_port = ${this.port}`,
        "unix_socket_dir = ''",
        'auth_type = trust',
        `auth_file = ${join(dir, 'userlist.txt')}`,
        `pool_mode = ${this.settings.poolMode}`,
        `default_pool_size = ${this.settings.defaultPoolSize}`,
        'max_client_conn = 500',
        `logfile = ${join(dir, 'pgbouncer.log')}`,
        `pidfile = ${join(dir, 'pgbouncer.pid')}`,
        'ignore_startup_parameters = extra_float_digits',
        '',
      ].join('\n'),
    );
    const asRoot = process.getuid?.() === 0;
    if (asRoot) execFileSync('chown', ['-R', 'postgres', dir]);
    try {
      if (asRoot) execFileSync('su', ['postgres', '-s', '/bin/sh', '-c', `${binary} -d ${ini}`], { stdio: 'pipe' });
      else execFileSync(binary, ['-d', ini], { stdio: 'pipe' });
    } catch (error) {
      throw new Error(`pgbouncer did not start: ${(error as { stderr?: Buffer }).stderr?.toString() ?? error}\n${this.log()}`);
    }
    await waitFor('pgbouncer accepting connections', async () => {
      const client = new Client({ connectionString: this.url });
      try {
        await client.connect();
        await client.query('SELECT 1');
        return true;
      } finally {
        await client.end().catch(() => undefined);
      }
    }, 15_000);
  }

  /** Stops the bouncer (SIGTERM) and removes its folder. */
  async stop(): Promise<void> {
    const dir = this.dir;
    if (!dir) return;
    this.dir = undefined;
    const pidFile = join(dir, 'pgbouncer.pid');
    if (existsSync(pidFile)) {
      const pid = Number(readFileSync(pidFile, 'utf8').trim());
      if (pid > 0) {
        try {
          process.kill(pid, 'SIGTERM');
        } catch {
          // already gone
        }
        await waitFor('pgbouncer gone', () => !isAlive(pid), 10_000);
      }
    }
    rmSync(dir, { recursive: true, force: true });
  }

  log(): string {
    try {
      return readFileSync(join(this.dir ?? '', 'pgbouncer.log'), 'utf8');
    } catch {
      return '';
    }
  }
}

function findBinary(): string {
  for (const candidate of ['/usr/sbin/pgbouncer', '/usr/bin/pgbouncer']) if (existsSync(candidate)) return candidate;
  try {
    return execFileSync('sh', ['-c', 'command -v pgbouncer'], { encoding: 'utf8' }).trim();
  } catch {
    throw new Error('pgbouncer is not installed: `apt-get install -y pgbouncer` (.ci/run does it)');
  }
}


