import type { INestApplicationContext } from '@nestjs/common';
import { QueueService } from '../../../lib';
import { createTestApp } from './app';
import { DATABASE_URL, dropSchema } from './database';
import { TcpProxy } from './tcp-proxy';

/**
 * The setup of the outage tests, registered as the calling file's hooks: a TCP proxy in front of the
 * test database (for the apps under test to connect through, so it can cut or freeze their network)
 * and a producer-only app that talks to the database directly (`env.queue`, set before the first
 * test); torn down after the last test, the proxy unfrozen first.
 */
export function useProxiedDatabase(schema: string) {
  const target = new URL(DATABASE_URL);
  let producer: INestApplicationContext | undefined;
  const env = {
    proxy: new TcpProxy(target.hostname, Number(target.port || 5432)),
    queue: undefined as unknown as QueueService,
  };
  beforeAll(async () => {
    await env.proxy.start();
    producer = await createTestApp({ schema, queue: { worker: false } });
    env.queue = producer.get(QueueService);
  });
  afterAll(async () => {
    env.proxy.unfreeze();
    await env.proxy.stop();
    await producer?.close();
    await dropSchema(schema);
  });
  return env;
}
