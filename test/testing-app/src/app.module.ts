import { Module } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import { QueueModule } from 'nestjs-pg-queue';
import { EmailProcessor } from './email.processor';
import { SignupController } from './signup.controller';

// A small CommonJS Nest 11 app for test/integration/testing-app.spec.ts. The tests set
// QUEUE_WORKER=off for `worker: false`, and TESTING_APP_SCHEMA for a schema of their own.
@Module({
  imports: [
    TypeOrmModule.forRoot({
      type: 'postgres',
      url: process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test',
    }),
    QueueModule.forRoot({
      schema: process.env.TESTING_APP_SCHEMA ?? 'public',
      worker: process.env.QUEUE_WORKER === 'off' ? false : { shutdownTimeoutMs: 500 },
    }),
  ],
  controllers: [SignupController],
  providers: [EmailProcessor],
})
export class AppModule {}
