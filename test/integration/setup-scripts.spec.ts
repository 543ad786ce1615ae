import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Client } from 'pg';
import { freePort, isAlive, run } from './helpers/child-process';
import { waitFor } from './helpers/wait-for';

/**
 * The set-up behind `npm start` and `npm test` (scripts/bootstrap.mjs, scripts/embedded-server.mjs)
 * with real processes and real signals: the embedded PostgreSQL 18 starts, is stopped and cleaned
 * up on failure and on SIGTERM, and the bad states (port taken, folder unusable, a server left by a
 * killed run, a stale pid file) end in one clear message.
 */

const ROOT = resolve(__dirname, '../..');
const DRIVER = join(__dirname, 'fixtures/embedded-server-driver.mjs');
const HOLD = join(__dirname, 'fixtures/hold-database.mjs');
/** The children run without DATABASE_URL (the suite itself may be running with one). */
const { DATABASE_URL: _ignored, ...ENV_WITHOUT_URL } = process.env;

interface Started {
  child: ChildProcess;
  line: Promise<any>;
  output: () => string;
  exited: Promise<number | null>;
}

function start(args: string[], env: NodeJS.ProcessEnv = {}): Started {
  const child = spawn(process.execPath, args, { cwd: ROOT, env: { ...ENV_WITHOUT_URL, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  const line = new Promise<any>((resolveLine, reject) => {
    child.stdout!.on('data', (chunk: Buffer) => {
      stdout += chunk;
      const first = stdout.split('\n').find((l) => l.startsWith('{'));
      if (first && stdout.includes('\n')) resolveLine(JSON.parse(first));
    });
    child.on('exit', (code) => reject(new Error(`exited with ${code} before printing a line\n${stdout}\n${stderr}`)));
  });
  line.catch(() => undefined);
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk));
  const exited = new Promise<number | null>((done) => child.on('exit', (code, signal) => done(code ?? (signal ? -1 : null))));
  return { child, line, output: () => `${stdout}${stderr}`, exited };
}


async function connects(url: string): Promise<boolean> {
  const client = new Client({ connectionString: url, connectionTimeoutMillis: 2000 });
  client.on('error', () => undefined);
  try {
    await client.connect();
    await client.query('SELECT 1');
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => undefined);
  }
}

describe('npm start / npm test set-up: the embedded PostgreSQL', () => {
  const work = mkdtempSync(join(tmpdir(), 'pgq-setup-spec-'));
  // NOTE: as root the server runs as the `postgres` user, which must be able to enter the folder.
  chmodSync(work, 0o755);
  const leftovers: number[] = [];

  afterAll(() => {
    for (const pid of leftovers) if (isAlive(pid)) process.kill(pid, 'SIGQUIT');
    rmSync(work, { recursive: true, force: true });
  });

  it('exec: the script gets DATABASE_URL of an embedded PostgreSQL 18; its exit code is kept and the temp folder goes', async () => {
    const result = await run(process.execPath, ['scripts/bootstrap.mjs', 'exec', HOLD, '3'], ROOT, 60_000, { DATABASE_URL: '' });
    expect({ code: result.code, stderr: result.stderr }).toMatchObject({ code: 3 });
    const line = JSON.parse(result.stdout.trim().split('\n')[0]);
    expect(line.serverVersion).toMatch(/^18\./);
    const dataDir = /temporary data in (\S+),/.exec(result.stderr)?.[1];
    expect(dataDir).toBeDefined();
    expect(existsSync(dataDir!)).toBe(false);
    expect(existsSync(resolve(dataDir!, '..'))).toBe(false);
  });

  it('with DATABASE_URL set it starts nothing and hands that URL on', async () => {
    const url = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
    const result = await run(process.execPath, ['scripts/bootstrap.mjs', 'exec', HOLD, '0'], ROOT, 60_000, { DATABASE_URL: url });
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout.trim().split('\n')[0]).databaseUrl).toBe(url);
    expect(result.stderr).toContain('no embedded PostgreSQL started');
    expect(result.stderr).not.toContain('embedded PostgreSQL 18 on port');
  });

  it('SIGTERM while the command runs: the command ends, the server stops, the temp folder goes, exit 143', async () => {
    const runner = start(['scripts/bootstrap.mjs', 'exec', HOLD]);
    const { databaseUrl } = await runner.line;
    const dataDir = await waitFor('the data folder in the log', () => /temporary data in (\S+),/.exec(runner.output())?.[1]);
    const serverPid = Number(/^\d+/.exec(readFileSync(join(dataDir, 'postmaster.pid'), 'utf8'))![0]);
    leftovers.push(serverPid);
    expect(await connects(databaseUrl)).toBe(true);

    runner.child.kill('SIGTERM');
    expect(await runner.exited).toBe(143);
    expect(isAlive(serverPid)).toBe(false);
    expect(existsSync(resolve(dataDir, '..'))).toBe(false);
    expect(await connects(databaseUrl)).toBe(false);
  });

  it('its launcher (npm, above `sh -c`) killed alone: it notices, stops the command and the server, removes the folder', async () => {
    // NOTE: npm exits on a SIGINT/SIGTERM sent to it alone without passing it on; a stand-in for
    // npm that runs the script through `sh -c`, as npm does, is killed here.
    const launcher = `require('node:child_process').spawn('sh', ['-c', ${JSON.stringify(`"${process.execPath}" scripts/bootstrap.mjs exec "${HOLD}"`)}], { stdio: 'inherit' })`;
    const runner = start(['-e', launcher]);
    const { databaseUrl } = await runner.line;
    const dataDir = await waitFor('the data folder in the log', () => /temporary data in (\S+),/.exec(runner.output())?.[1]);
    const serverPid = Number(/^\d+/.exec(readFileSync(join(dataDir, 'postmaster.pid'), 'utf8'))![0]);
    leftovers.push(serverPid);

    runner.child.kill('SIGKILL');
    await waitFor('the server to stop and its folder to go', () => !isAlive(serverPid) && !existsSync(resolve(dataDir, '..')), 20_000);
    expect(await connects(databaseUrl)).toBe(false);
  });

  it('a killed (SIGKILL) npm test leaves a server and a temp folder: the next run stops that server and removes the folder', async () => {
    const killed = start(['scripts/bootstrap.mjs', 'exec', HOLD]);
    await killed.line;
    const dataDir = await waitFor('the data folder in the log', () => /temporary data in (\S+),/.exec(killed.output())?.[1]);
    const serverPid = Number(/^\d+/.exec(readFileSync(join(dataDir, 'postmaster.pid'), 'utf8'))![0]);
    leftovers.push(serverPid);
    killed.child.kill('SIGKILL');
    await killed.exited;
    expect(isAlive(serverPid)).toBe(true);

    const next = await run(process.execPath, ['scripts/bootstrap.mjs', 'exec', HOLD, '0'], ROOT, 60_000, { DATABASE_URL: '' });
    expect(next.code).toBe(0);
    expect(next.stderr).toContain(`removing ${resolve(dataDir, '..')}, left by a killed test run (stopping its server, pid ${serverPid})`);
    expect(isAlive(serverPid)).toBe(false);
    expect(existsSync(resolve(dataDir, '..'))).toBe(false);
  });

  it('a killed npm start does not block the next: the server it left is stopped and a new one starts on the same data', async () => {
    const env = { EMBEDDED_PG_DIR: join(work, 'killed'), EMBEDDED_PG_PORT: String(await freePort()) };
    const first = start([DRIVER, 'persistent'], env);
    const { url, serverPid } = await first.line;
    leftovers.push(serverPid);
    const client = new Client({ connectionString: url });
    await client.connect();
    await client.query('CREATE TABLE survives (v int); INSERT INTO survives VALUES (42)');
    await client.end();

    first.child.kill('SIGKILL');
    await first.exited;
    expect(isAlive(serverPid)).toBe(true); // the orphan still holds the port and the folder

    const second = start([DRIVER, 'persistent'], env);
    const restarted = await second.line;
    leftovers.push(restarted.serverPid);
    expect(second.output()).toContain(`stopping the PostgreSQL server (pid ${serverPid}) that a killed run left`);
    expect(isAlive(serverPid)).toBe(false);
    const again = new Client({ connectionString: restarted.url });
    await again.connect();
    expect((await again.query('SELECT v FROM survives')).rows).toEqual([{ v: 42 }]);
    await again.end();
    second.child.kill('SIGTERM');
    expect(await second.exited).toBe(0);
    expect(isAlive(restarted.serverPid)).toBe(false);
  });

  it('a stale postmaster.pid (its process gone) is removed with a note, and the server starts', async () => {
    const env = { EMBEDDED_PG_DIR: join(work, 'stale'), EMBEDDED_PG_PORT: String(await freePort()) };
    const first = start([DRIVER, 'persistent'], env);
    const { dataDir, serverPid: firstPid } = await first.line;
    first.child.kill('SIGTERM');
    expect(await first.exited).toBe(0);
    expect(isAlive(firstPid)).toBe(false);
    writeFileSync(join(dataDir, 'postmaster.pid'), '999999999\n/nowhere\n');

    const second = start([DRIVER, 'persistent'], env);
    const { serverPid } = await second.line;
    leftovers.push(serverPid);
    expect(second.output()).toContain('removing the stale');
    second.child.kill('SIGTERM');
    expect(await second.exited).toBe(0);
  });

  it('the port taken: a message that names it and says what to do, no hang', async () => {
    const blocker: Server = createServer();
    await new Promise<void>((done) => blocker.listen(0, '127.0.0.1', done));
    const port = (blocker.address() as { port: number }).port;
    try {
      const result = await run(process.execPath, [DRIVER, 'persistent'], ROOT, 30_000, { ...ENV_WITHOUT_URL, EMBEDDED_PG_DIR: join(work, 'port'), EMBEDDED_PG_PORT: String(port) });
      expect(result.code).toBe(1);
      expect(result.stderr).toContain(`port ${port} is taken`);
      expect(result.stderr).toContain('EMBEDDED_PG_PORT=');
    } finally {
      blocker.close();
    }
  });

  it('a data folder that cannot be created: a message that names it and says what to do', async () => {
    const file = join(work, 'a-file');
    writeFileSync(file, '');
    const result = await run(process.execPath, [DRIVER, 'persistent'], ROOT, 30_000, { EMBEDDED_PG_DIR: join(file, 'data') });
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(`cannot use ${join(file, 'data')} as the embedded PostgreSQL data folder (ENOTDIR)`);
    expect(result.stderr).toContain('EMBEDDED_PG_DIR');
  });
});

describe('npm start / npm test set-up: install only when needed', () => {
  const work = mkdtempSync(join(tmpdir(), 'pgq-install-spec-'));
  afterAll(() => rmSync(work, { recursive: true, force: true }));

  /** bootstrap.mjs's installProblem(root), run by Node (the file is an ES module; jest here is CommonJS). */
  async function installProblem(root: string): Promise<string | undefined> {
    const code = `import { installProblem } from ${JSON.stringify(join(ROOT, 'scripts/bootstrap.mjs'))}; console.log(JSON.stringify(installProblem(process.argv[1]) ?? null));`;
    const result = await run(process.execPath, ['--input-type=module', '-e', code, root], ROOT, 20_000);
    if (result.code !== 0) throw new Error(result.stderr);
    return JSON.parse(result.stdout) ?? undefined;
  }

  function project(lock: Record<string, object>, installed?: Record<string, object>): string {
    const root = mkdtempSync(join(work, 'p-'));
    writeFileSync(join(root, 'package-lock.json'), JSON.stringify({ lockfileVersion: 3, packages: { '': {}, ...lock } }));
    if (installed) {
      mkdirSync(join(root, 'node_modules'));
      writeFileSync(join(root, 'node_modules/.package-lock.json'), JSON.stringify({ packages: installed }));
      for (const path of Object.keys(installed)) mkdirSync(join(root, path), { recursive: true });
    }
    return root;
  }

  it('this repository is installed as its lockfile says', async () => {
    expect(await installProblem(ROOT)).toBeUndefined();
  });

  it('names what is missing or stale, and skips optional packages of other platforms', async () => {
    const lock = {
      'node_modules/a': { version: '1.0.0' },
      'node_modules/other-os': { version: '1.0.0', optional: true, os: [process.platform === 'win32' ? 'linux' : 'win32'] },
    };
    expect(await installProblem(project(lock))).toBe('node_modules is missing');
    expect(await installProblem(project(lock, { 'node_modules/a': { version: '1.0.0' } }))).toBeUndefined();
    expect(await installProblem(project(lock, { 'node_modules/a': { version: '0.9.0' } }))).toBe('a is 0.9.0, package-lock.json wants 1.0.0');
    expect(await installProblem(project({ ...lock, 'node_modules/b': { version: '2.0.0' } }, { 'node_modules/a': { version: '1.0.0' } }))).toBe('b is not installed');
  });
});

