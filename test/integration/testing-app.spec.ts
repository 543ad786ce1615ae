import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describeFailure, run } from './helpers/child-process';
import { DATABASE_URL, dropSchema, sql, uniqueSchema } from './helpers/database';

/**
 * A user's jest e2e test of a small CommonJS Nest 11 app (test/testing-app: the README's "Testing
 * your processors" example) run by jest in a child process with --detectOpenHandles and without
 * --forceExit: it must pass and the process must end by itself, with the worker off (the
 * recommended setting in tests) and with a running worker.
 */

const ROOT = resolve(__dirname, '../..');
const JEST = join(ROOT, 'node_modules/jest/bin/jest.js');
const TIMEOUT_MS = 120_000;

describe('nestjs-pg-queue/testing in a user\'s jest e2e test', () => {
  const schemas: string[] = [];
  afterAll(async () => {
    for (const schema of schemas) await dropSchema(schema);
  });

  it("is the README's example, verbatim", () => {
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
    const section = readme.slice(readme.indexOf('## Testing your processors'));
    const example = /```ts\n(import { INestApplication }[\s\S]*?)```/.exec(section)?.[1];
    expect(example).toBe(readFileSync(join(ROOT, 'test/testing-app/test/app.e2e-spec.ts'), 'utf8'));
  });

  it.each([
    ['worker: false', 'off'],
    ['a running worker', 'on'],
  ])('passes and exits by itself with %s (--detectOpenHandles, no --forceExit)', async (_label, worker) => {
    const schema = uniqueSchema('userapp');
    schemas.push(schema);
    await sql(`CREATE SCHEMA "${schema}"`);
    const result = await run(
      process.execPath,
      [JEST, '--config', 'test/testing-app/jest.config.js', '--detectOpenHandles', '--runInBand', '--ci'],
      ROOT,
      TIMEOUT_MS,
      { DATABASE_URL, TESTING_APP_SCHEMA: schema, QUEUE_WORKER: worker },
    );
    const output = `${result.stdout}\n${result.stderr}`;
    if (result.code !== 0) throw new Error(describeFailure(`jest --detectOpenHandles (${worker})`, result, TIMEOUT_MS));
    expect(output).toContain('Tests:       2 passed, 2 total');
    expect(output).not.toMatch(/open handle|did not exit one second after/i);
    // The test's jobs went to its schema and were cleared by tester.clear() after each test.
    expect(await sql(`SELECT count(*)::int AS n FROM "${schema}".queue_jobs`)).toEqual([{ n: 0 }]);
  }, TIMEOUT_MS + 10_000);
});
