import { Module } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import { QueueModule } from 'nestjs-pg-queue';
import { SmokeProcessor } from './smoke.processor.js';

/** The root module: TypeORM on `databaseUrl` plus QueueModule in `schema`, and one processor. */
export function createAppModule({ databaseUrl, schema, worker = { pollIntervalMs: 100 } }) {
  class AppModule {}
  Module({
    imports: [
      TypeOrmModule.forRoot({ type: 'postgres', url: databaseUrl, synchronize: false, logging: false, poolSize: 4 }),
      QueueModule.forRoot({ schema, worker }),
    ],
    providers: [SmokeProcessor],
  })(AppModule);
  return AppModule;
}
