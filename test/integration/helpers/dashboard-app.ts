import 'reflect-metadata';
import { Module, type INestApplication, type Provider, type Type } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { ExpressAdapter } from '@nestjs/platform-express';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import { TypeOrmModule } from '@nestjs/typeorm';
import { networkInterfaces } from 'node:os';
import type { AddressInfo } from 'node:net';
import { QueueModule, type QueueModuleOptions } from '../../../lib';
import { QueueDashboardModule, type QueueDashboardOptions } from '../../../lib/dashboard';
import { DATABASE_URL } from './database';

export type Platform = 'express' | 'fastify';

export interface DashboardAppOptions {
  platform: Platform;
  schema: string;
  dashboard?: QueueDashboardOptions;
  queue?: Omit<QueueModuleOptions, 'schema'>;
  providers?: (Provider | Type)[];
  globalPrefix?: string;
  /** Listen on every interface (for requests from a non-loopback address). */
  listenAll?: boolean;
}

/** A real HTTP Nest app (Express or Fastify) with QueueModule and the dashboard, listening on a free port. */
export async function createDashboardApp(options: DashboardAppOptions): Promise<{ app: INestApplication; port: number; url: string }> {
  @Module({
    imports: [
      TypeOrmModule.forRoot({ type: 'postgres', url: DATABASE_URL, synchronize: false, logging: false, poolSize: 10 } as never),
      QueueModule.forRoot({ schema: options.schema, ...options.queue }),
      QueueDashboardModule.forRoot(options.dashboard ?? {}),
    ],
    providers: options.providers ?? [],
  })
  class DashboardTestModule {}

  const adapter = options.platform === 'fastify' ? new FastifyAdapter() : new ExpressAdapter();
  const app = await NestFactory.create(DashboardTestModule, adapter, { logger: process.env.TEST_LOGS ? undefined : ['error'], abortOnError: false });
  if (options.globalPrefix) app.setGlobalPrefix(options.globalPrefix);
  await app.listen(0, options.listenAll ? '0.0.0.0' : '127.0.0.1');
  const port = (app.getHttpServer().address() as AddressInfo).port;
  return { app, port, url: `http://127.0.0.1:${port}` };
}

/** A non-loopback IPv4 address of this machine (to send a request that does not come from loopback). */
export function externalAddress(): string {
  for (const list of Object.values(networkInterfaces())) {
    for (const address of list ?? []) if (address.family === 'IPv4' && !address.internal) return address.address;
  }
  throw new Error('this machine has no non-loopback IPv4 address: the loopback-only test needs one');
}
