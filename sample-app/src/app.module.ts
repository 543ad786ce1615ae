import { Module, type DynamicModule } from '@nestjs/common';
import { APP_FILTER } from '@nestjs/core';
import { TypeOrmModule } from '@nestjs/typeorm';
import { QueueModule } from '../../lib';
import { loadConfig, type AppConfig } from './config';
import { DemoModule } from './demo/demo.module';
import { DashboardModule } from './dashboard/dashboard.module';
import { EmailModule } from './email/email.module';
import { HomeModule } from './home/home.module';
import { JobsModule } from './jobs/jobs.module';
import { QueueErrorFilter } from './jobs/queue-error.filter';
import { SignupModule } from './signup/signup.module';

@Module({})
export class AppModule {
  /** The whole app; `config` defaults to the environment (tests pass their own schema). */
  static forRoot(config: AppConfig = loadConfig()): DynamicModule {
    return {
      module: AppModule,
      imports: [
        // The app's own tables (sample_users). The job table is not an entity here: the queue
        // creates it with its own migration at startup.
        TypeOrmModule.forRoot({
          type: 'postgres',
          url: config.databaseUrl,
          schema: config.schema,
          autoLoadEntities: true,
          synchronize: true,
        }),
        // NOTE: one service that deploys as a whole: a job name it has no handler for is a mistake
        // here, not a newer version's job, so it fails at once instead of waiting for the grace
        // that rolling deploys of several versions need (worker.unknownJobGraceMs, 10 min by default).
        QueueModule.forRoot({ schema: config.schema, worker: { unknownJobGraceMs: 0 } }),
        SignupModule,
        EmailModule,
        JobsModule,
        DemoModule,
        HomeModule,
        DashboardModule,
      ],
      // NOTE: registered as a provider rather than with app.useGlobalFilters() so a test that
      // boots AppModule gets the same HTTP errors as main.ts.
      providers: [{ provide: APP_FILTER, useClass: QueueErrorFilter }],
    };
  }
}
