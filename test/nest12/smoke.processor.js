import { Inject } from '@nestjs/common';
import { Handle, Processor } from 'nestjs-pg-queue';
import { DataSource } from 'typeorm';

/**
 * Runs the `smoke` queue. Plain JavaScript, so decorators are applied as functions below. It takes
 * the TypeORM DataSource by constructor injection to prove DI into a processor works under Nest 12.
 */
export class SmokeProcessor {
  constructor(dataSource) {
    this.dataSource = dataSource;
  }

  async ping(job) {
    const [{ doubled }] = await this.dataSource.query('SELECT $1::int * 2 AS doubled', [job.data.n]);
    return { pong: true, doubled, attempt: job.attempts };
  }
}

Inject(DataSource)(SmokeProcessor, undefined, 0);
Processor('smoke')(SmokeProcessor);
Handle('ping')(SmokeProcessor.prototype, 'ping', Object.getOwnPropertyDescriptor(SmokeProcessor.prototype, 'ping'));
