import type { INestApplicationContext } from '@nestjs/common';
import { QueueDatabaseError, QueueError, QueueService, QueueUnavailableError } from '../../lib';
import { isConnectionError, translateDatabaseError } from '../../lib/database/database-errors';
import { createTestApp } from './helpers/app';
import { dropSchema, sql, uniqueSchema } from './helpers/database';

// Issue 9, item 7 (the error half): no raw driver error reaches a caller of QueueService.
const schema = uniqueSchema('dberr');

describe('errors the database returns', () => {
  let app: INestApplicationContext;
  let queue: QueueService;

  beforeAll(async () => {
    app = await createTestApp({ schema, queue: { worker: false } });
    queue = app.get(QueueService);
    // The table goes away under the app: every statement now fails with 42P01 (undefined_table).
    // CASCADE: the limited claim function returns the table's row type.
    await sql(`DROP TABLE "${schema}".queue_jobs CASCADE`);
  });

  afterAll(async () => {
    await app?.close();
    await dropSchema(schema);
  });

  it.each([
    ['insert', () => queue.add('q', 'n', {})],
    ['insert', () => queue.add('q', 'n', {}, { priority: 3 })],
    ['insert', () => queue.addBulk([1, 2].map((i) => ({ queue: 'q', name: 'n', data: i })))],
    ['insert', () => queue.addBulk(Array.from({ length: 100 }, (_, i) => ({ queue: 'q', name: 'n', data: i })))],
    ['getJob', () => queue.getJob('1')],
    ['getCounts', () => queue.getCounts()],
    ['cancel', () => queue.cancel('1')],
    ['retry', () => queue.retry('1')],
  ])('%s: a QueueDatabaseError naming the operation and the SQLSTATE, with the cause', async (operation, call) => {
    const error = await call().then(
      () => 'resolved',
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(QueueDatabaseError);
    expect(error).toBeInstanceOf(QueueError);
    expect(error).toMatchObject({ name: 'QueueDatabaseError', operation, sqlState: '42P01' });
    expect((error as Error).message).toMatch(new RegExp(`^Queue database error during ${operation} \\(SQLSTATE 42P01\\): relation .* does not exist`));
    expect((error as Error).cause).toMatchObject({ code: '42P01' });
    expect(isConnectionError(error)).toBe(false);
  });

  it('connection failures stay QueueUnavailableError, and isConnectionError still knows both once translated', () => {
    const lost = translateDatabaseError('claim', Object.assign(new Error('Connection terminated unexpectedly'), {}));
    expect(lost).toBeInstanceOf(QueueUnavailableError);
    expect(isConnectionError(lost)).toBe(true);
    const refused = translateDatabaseError('claim', Object.assign(new Error('duplicate key'), { code: '23505' }));
    expect(refused).toBeInstanceOf(QueueDatabaseError);
    expect(isConnectionError(refused)).toBe(false);
    // Translating twice changes nothing.
    expect(translateDatabaseError('finish', refused)).toBe(refused);
    expect(translateDatabaseError('finish', lost)).toBe(lost);
  });
});
