import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { waitFor } from '../helpers/wait-for';
import { useChaosEnvironment } from './fixtures/chaos-db';

/**
 * The optional peers (prom-client, @opentelemetry/api, @nestjs/terminus) stay optional: a worker
 * process that cannot resolve any of them boots, runs jobs and writes its rollups and registry row
 * exactly as before, and says nothing about them; one that configures metrics without prom-client
 * fails its boot naming the package.
 */
const env = useChaosEnvironment('obs_peers');
const { workers } = env;
const BLOCKED = ['prom-client', '@opentelemetry/api', '@nestjs/terminus'];

describe('optional peer dependencies', () => {
  let dir: string;
  let preload: string;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'pgq-peers-'));
    preload = join(dir, 'block-peers.js');
    // NOTE: a require() of any of them (or of a file inside them) fails as if it were not installed,
    // and leaves a mark in the output, so even a require whose error is caught is seen.
    writeFileSync(
      preload,
      `const Module = require('module');
const blocked = ${JSON.stringify(BLOCKED)};
const resolve = Module._resolveFilename;
Module._resolveFilename = function (request, ...rest) {
  if (blocked.some((b) => request === b || request.startsWith(b + '/'))) {
    process.stderr.write('PEER_REQUIRED ' + request + '\\n');
    const error = new Error("Cannot find module '" + request + "'");
    error.code = 'MODULE_NOT_FOUND';
    throw error;
  }
  return resolve.call(this, request, ...rest);
};
`,
    );
  });
  afterEach(() => workers.killAll());
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('a worker without any of them runs jobs, lists itself and writes rollups, with no warning', async () => {
    const child = workers.spawn(
      { queue: 'peers', logLevels: ['log', 'error', 'warn'], queueOptions: { stats: { flushIntervalMs: 100 } } },
      ['--require', preload],
    );
    expect(await child.ready).toBe(true);
    const job = await env.queue.add('peers', 'noop', {});
    await waitFor('the job to complete', async () => (await env.queue.getJob(job.id))?.state === 'completed');
    await waitFor('the worker to be listed', async () => (await env.queue.getWorkers()).some((w) => w.pid === child.pid));
    await waitFor('its rollup to be written', async () => (await env.queue.getStats({ queue: 'peers' })).some((r) => r.completed === 1));
    child.kill('SIGTERM');
    await child.exited;
    expect(child.output).not.toContain('PEER_REQUIRED');
    // Nest's own log lines are all it printed: no warning, no error.
    const lines = child.output.split('\n').filter((l) => l.trim() !== '' && !l.startsWith('CHAOS_READY'));
    expect(lines.filter((l) => !/\bLOG\b/.test(l))).toEqual([]);
  });

  it.each([
    ['metrics', { metrics: {} }, 'QueueModule.forRoot({ metrics })', 'prom-client'],
    ['tracing', { tracing: true }, 'QueueModule.forRoot({ tracing: true })', '@opentelemetry/api'],
  ])('%s configured without its peer: the boot fails with MissingPeerDependencyError naming it', async (_what, queueOptions, option, peer) => {
    const child = workers.spawn({ queue: 'peers', queueOptions }, ['--require', preload]);
    expect(await child.ready).toBe(false);
    expect(child.output).toContain(`CHAOS_BOOT_FAILED MissingPeerDependencyError: ${option} needs the package ${peer}, which is not installed: npm install ${peer}`);
  });
});
