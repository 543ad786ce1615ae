import { INestApplication } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import request from 'supertest';
import { createQueueTester, QueueTester } from 'nestjs-pg-queue/testing';
import { AppModule } from '../src/app.module';

describe('signup sends a welcome email', () => {
  let app: INestApplication;
  let tester: QueueTester;

  beforeAll(async () => {
    const moduleRef = await Test.createTestingModule({ imports: [AppModule] }).compile();
    app = await moduleRef.createNestApplication().init();
    tester = createQueueTester(app);
  });

  afterEach(() => tester.clear());
  afterAll(() => app.close());

  it('enqueues the email and runs it', async () => {
    const email = `ada+${Date.now()}@example.com`; // users.email is unique: a new one per run
    await request(app.getHttpServer()).post('/signup').send({ email }).expect(201);

    const [job] = await tester.expectEnqueued({ queue: 'email', name: 'welcome', data: { to: email } });
    expect(job.id).toMatch(/^\d+$/);

    const summary = await tester.drain('email');
    expect(summary.failed).toBe(0);
    expect(await tester.enqueued({ queue: 'email', data: { to: email }, state: 'completed' })).toHaveLength(1);
  });

  it('runs the handler directly', async () => {
    const result = await tester.run('email', 'welcome', { to: 'x@y.z' });
    expect(result).toEqual({ sentAt: expect.any(String) });
  });
});
