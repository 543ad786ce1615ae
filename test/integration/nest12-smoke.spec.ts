import { cpSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { describeFailure, mustRun, run } from './helpers/child-process';
import { DATABASE_URL, dropSchema, sql, uniqueSchema } from './helpers/database';

/**
 * The library is developed and tested on NestJS 11 (CommonJS) but declares Nest 12 (ESM-only) as a
 * peer too. This packs it exactly as it would be published, installs the tarball into the tiny ESM
 * Nest 12 app in test/nest12 (in a temp directory outside the repository, so nothing can resolve the
 * repository's own Nest 11), and runs that app: it must boot, run one job and shut down cleanly,
 * with a single copy of @nestjs/core shared by the app and the library.
 */

const ROOT = resolve(__dirname, '../..');
const FIXTURE = join(ROOT, 'test/nest12');
const LIBRARY_VERSION: string = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).version;

describe('packed library in a NestJS 12 ESM app', () => {
  const schema = uniqueSchema('nest12');
  const vitestSchema = uniqueSchema('nest12_vitest');
  let workDir: string | undefined;
  let appDir: string;

  beforeAll(async () => {
    workDir = mkdtempSync(join(tmpdir(), 'nestjs-pg-queue-nest12-'));
    appDir = join(workDir, 'app');

    await mustRun('npm', ['run', 'build'], ROOT, 120_000);
    const packed = await mustRun('npm', ['pack', '--pack-destination', workDir, '--json'], ROOT, 60_000);
    const tarball = join(workDir, basename(JSON.parse(packed.stdout)[0].filename));

    cpSync(FIXTURE, appDir, {
      recursive: true,
      filter: (source) => !['node_modules', 'package-lock.json'].includes(basename(source)),
    });
    await mustRun('npm', ['install', '--no-audit', '--no-fund', '--no-package-lock', '--loglevel=error', tarball], appDir, 180_000);
  }, 300_000);

  afterAll(async () => {
    await dropSchema(schema);
    await dropSchema(vitestSchema);
    if (workDir) rmSync(workDir, { recursive: true, force: true });
  });

  it('installs from the tarball next to Nest 12, runs a job and shuts down cleanly', async () => {

    const smoke = await run(process.execPath, ['main.js'], appDir, 90_000, { DATABASE_URL, SMOKE_SCHEMA: schema });
    if (smoke.code !== 0) throw new Error(describeFailure('node main.js (Nest 12 smoke app)', smoke, 90_000));

    const line = smoke.stdout.split('\n').reverse().find((l) => l.startsWith('{"smoke":'));
    if (!line) throw new Error(`the smoke app printed no outcome line\n${smoke.stdout}`);
    const outcome = JSON.parse(line);
    expect(outcome).toMatchObject({
      smoke: 'nest12',
      ok: true,
      libraryUsesAppNestCore: true,
      versions: { 'nestjs-pg-queue': LIBRARY_VERSION },
      job: { state: 'completed', attempts: 1, result: { pong: true, doubled: 42, attempt: 1 } },
    });
    expect(outcome.versions['@nestjs/core']).toMatch(/^12\./);
    expect(outcome.versions['@nestjs/common']).toMatch(/^12\./);
    expect(outcome.nestCoreCopies).toEqual([expect.stringMatching(/^node_modules[/\\]@nestjs[/\\]core@12\./)]);

    // The job went to the isolated schema this test handed the app.
    const rows = await sql<{ id: string; state: string }>(`SELECT id::text, state FROM "${schema}".queue_jobs`);
    expect(rows).toEqual([{ id: outcome.job.id, state: 'completed' }]);
  }, 240_000);

  it('nestjs-pg-queue/testing works under vitest in the ESM app (ESM import of the subpath export), worker off and on', async () => {
    await sql(`CREATE SCHEMA "${vitestSchema}"`);
    const vitest = await run(process.execPath, [join(appDir, 'node_modules/vitest/vitest.mjs'), 'run'], appDir, 120_000, {
      DATABASE_URL,
      SMOKE_SCHEMA: vitestSchema,
      NO_COLOR: '1',
      FORCE_COLOR: '0',
    });
    if (vitest.code !== 0) throw new Error(describeFailure('vitest run (Nest 12 ESM app)', vitest, 120_000));
    expect(`${vitest.stdout}${vitest.stderr}`).toMatch(/Tests\s+2 passed \(2\)/);
  }, 150_000);
});
