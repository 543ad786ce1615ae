// Smoke test: boots a NestJS 12 (ESM) app that uses the packed nestjs-pg-queue, runs one job and
// prints one JSON line with the outcome. Exit code 0 = passed, 1 = failed (reason on stderr).
//
// Run by test/integration/nest12-smoke.spec.ts, which copies this folder to a temp directory,
// installs the dependencies plus the library tarball and runs `node main.js`. By hand:
//   cp -r test/nest12 /tmp/smoke && cd /tmp/smoke && npm install /path/to/nestjs-pg-queue-x.y.z.tgz
//   DATABASE_URL=postgres://postgres@127.0.0.1:5432/test SMOKE_SCHEMA=nest12_smoke node main.js
// (Outside the repository, so nothing resolves the repository's own Nest 11 node_modules.)
//
// Env: DATABASE_URL, SMOKE_SCHEMA (schema of the job table; the caller drops it),
//      SMOKE_JOB_TIMEOUT_MS (wait for the job, default 20000), SMOKE_TIMEOUT_MS (whole run, default 60000).
import 'reflect-metadata';
import { readdirSync, readFileSync, realpathSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isDeepStrictEqual } from 'node:util';

// NOTE: Nest, the library and the app module are imported dynamically, after checkInstall(): a
// second (Nest 11) copy of @nestjs/core would otherwise crash at import time with an obscure error.

const started = Date.now();
const appDir = dirname(fileURLToPath(import.meta.url));
const databaseUrl = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const schema = process.env.SMOKE_SCHEMA ?? 'nest12_smoke';
const jobTimeoutMs = Number(process.env.SMOKE_JOB_TIMEOUT_MS ?? 20_000);
const timeoutMs = Number(process.env.SMOKE_TIMEOUT_MS ?? 60_000);
const input = 21;
const expectedResult = { pong: true, doubled: input * 2, attempt: 1 };

const outcome = { smoke: 'nest12', ok: false, node: process.version, schema };

function report(ok, error) {
  outcome.ok = ok;
  if (error) outcome.error = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  outcome.durationMs = Date.now() - started;
  process.stdout.write(`${JSON.stringify(outcome)}\n`);
  if (!ok) process.stderr.write(`nest12 smoke test FAILED: ${outcome.error}\n${error instanceof Error && error.stack ? `${error.stack}\n` : ''}`);
}

// NOTE: a hung boot, job or shutdown must end the process with a reason, not hang the caller.
const watchdog = setTimeout(() => {
  report(false, `timed out after ${timeoutMs} ms (stage: ${outcome.stage ?? 'start'})`);
  process.exit(1);
}, timeoutMs);
watchdog.unref();

/** Reads `name`'s package.json as resolved from `fromRequire` (walks up if the file is not exported). */
function packageOf(fromRequire, name) {
  let file;
  try {
    file = fromRequire.resolve(`${name}/package.json`);
  } catch {
    let dir = dirname(fromRequire.resolve(name));
    while (!readsAs(join(dir, 'package.json'), name)) {
      if (dirname(dir) === dir) throw new Error(`package.json of ${name} not found`);
      dir = dirname(dir);
    }
    file = join(dir, 'package.json');
  }
  const { version } = JSON.parse(readFileSync(file, 'utf8'));
  return { version, dir: realpathSync(dirname(file)) };
}

function readsAs(file, name) {
  try {
    return JSON.parse(readFileSync(file, 'utf8')).name === name;
  } catch {
    return false;
  }
}

/** Every installed copy of `name` (scoped or not) in the node_modules tree under `root`. */
function installedCopies(root, name) {
  const copies = [];
  const list = (dir) => {
    try {
      return readdirSync(dir).filter((entry) => !entry.startsWith('.'));
    } catch {
      return [];
    }
  };
  const visit = (nodeModules) => {
    for (const entry of list(nodeModules)) {
      const packages = entry.startsWith('@') ? list(join(nodeModules, entry)).map((sub) => `${entry}/${sub}`) : [entry];
      for (const pkg of packages) {
        const dir = join(nodeModules, pkg);
        if (pkg === name) copies.push(`${relative(root, dir)}@${JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')).version}`);
        visit(join(dir, 'node_modules'));
      }
    }
  };
  visit(join(root, 'node_modules'));
  return copies;
}

async function checkInstall() {
  outcome.stage = 'install';
  const appRequire = createRequire(import.meta.url);
  const libRequire = createRequire(appRequire.resolve('nestjs-pg-queue'));
  outcome.versions = {};
  for (const name of ['@nestjs/core', '@nestjs/common', '@nestjs/typeorm', 'typeorm', 'nestjs-pg-queue']) {
    outcome.versions[name] = packageOf(appRequire, name).version;
  }
  const appCore = packageOf(appRequire, '@nestjs/core');
  const libCore = packageOf(libRequire, '@nestjs/core');
  outcome.nestCoreCopies = installedCopies(appDir, '@nestjs/core');
  if (!appCore.version.startsWith('12.')) throw new Error(`expected @nestjs/core 12.x, resolved ${appCore.version}`);
  if (outcome.nestCoreCopies.length !== 1) throw new Error(`expected one copy of @nestjs/core, found ${outcome.nestCoreCopies.join(', ')}`);
  if (libCore.dir !== appCore.dir) throw new Error(`nestjs-pg-queue resolves @nestjs/core ${libCore.version} at ${libCore.dir}, the app ${appCore.version} at ${appCore.dir}`);

  const { NestFactory } = await import('@nestjs/core');
  // NOTE: the library is CommonJS; its require('@nestjs/core') loads the ESM package through Node's
  // require(esm). It must get the very module instance the app imported, or DI and discovery break.
  outcome.libraryUsesAppNestCore = libRequire('@nestjs/core').NestFactory === NestFactory;
  if (!outcome.libraryUsesAppNestCore) throw new Error("nestjs-pg-queue's require('@nestjs/core') is not the module instance the app imported");
}

async function runJob() {
  const { NestFactory } = await import('@nestjs/core');
  const { JobState, QueueService } = await import('nestjs-pg-queue');
  const { createAppModule } = await import('./app.module.js');

  outcome.stage = 'boot';
  const app = await NestFactory.createApplicationContext(createAppModule({ databaseUrl, schema }), { logger: ['error', 'warn'] });
  try {
    outcome.stage = 'enqueue';
    const queue = app.get(QueueService);
    const { id } = await queue.add('smoke', 'ping', { n: input });
    outcome.stage = 'wait';
    const deadline = Date.now() + jobTimeoutMs;
    let job = await queue.getJob(id);
    const finished = (j) => !j || [JobState.Completed, JobState.Failed, JobState.Cancelled].includes(j.state);
    while (!finished(job) && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      job = await queue.getJob(id);
    }
    outcome.job = job && { id: job.id, state: job.state, attempts: job.attempts, result: job.result, lastError: job.lastError ?? undefined };
    if (!finished(job)) {
      throw new Error(`job ${id} still "${job.state}" after ${jobTimeoutMs} ms`);
    }
    if (job?.state !== JobState.Completed) throw new Error(`job ${id} ended ${job ? `"${job.state}"` : 'missing'}${job?.lastError ? `: ${job.lastError.message}` : ''}`);
    if (!isDeepStrictEqual(job.result, expectedResult)) {
      throw new Error(`job result ${JSON.stringify(job.result)}, expected ${JSON.stringify(expectedResult)}`);
    }
  } finally {
    outcome.stage = 'close';
    await app.close();
  }
}

try {
  await checkInstall();
  await runJob();
  clearTimeout(watchdog);
  delete outcome.stage;
  report(true);
  // NOTE: no process.exit(): the process must end by itself once app.close() has released the
  // pool, the LISTEN connection and the worker's timers; the timer below reports it if it does not.
  process.exitCode = 0;
  setTimeout(() => {
    process.stderr.write('nest12 smoke test FAILED: the process was still alive 10 s after app.close()\n');
    process.exit(1);
  }, 10_000).unref();
} catch (error) {
  report(false, error);
  process.exit(1);
}
