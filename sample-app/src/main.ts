import 'reflect-metadata';
import { Logger } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { AddressInfo } from 'node:net';
import { AppModule } from './app.module';
import { loadConfig } from './config';
import { assertDatabaseReachable } from './database-check';

async function bootstrap(): Promise<void> {
  const config = loadConfig();
  const logger = new Logger('SampleApp');
  try {
    await assertDatabaseReachable(config.databaseUrl);
  } catch (error) {
    logger.error((error as Error).message);
    process.exitCode = 1;
    return;
  }
  const app = await NestFactory.create(AppModule.forRoot(config));
  // SIGTERM/SIGINT -> app.close(): the worker stops claiming and lets running jobs finish first.
  app.enableShutdownHooks();
  await app.listen(config.port);

  const { port } = app.getHttpServer().address() as AddressInfo;
  const url = `http://localhost:${port}`;
  logger.log(`Listening on ${url}: open it in a browser`);
  logger.log(
    `Try: curl -s -X POST ${url}/signup -H 'content-type: application/json' -d '{"email":"ada@example.com"}'` +
      ` then curl -s ${url}/jobs/<jobId>`,
  );
}

void bootstrap();
