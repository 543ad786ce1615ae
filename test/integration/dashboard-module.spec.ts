import 'reflect-metadata';
import {
  Inject, Injectable, Module, type CallHandler, type CanActivate, type ExecutionContext, type INestApplication, type NestInterceptor,
} from '@nestjs/common';
import { APP_GUARD, APP_INTERCEPTOR, NestFactory } from '@nestjs/core';
import { ExpressAdapter } from '@nestjs/platform-express';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import { TypeOrmModule } from '@nestjs/typeorm';
import request from 'supertest';
import { tap } from 'rxjs';
import { InvalidModuleOptionsError, QueueModule } from '../../lib';
import { QueueDashboardModule } from '../../lib/dashboard';
import { DATABASE_URL, dropSchema, uniqueSchema } from './helpers/database';

const TOKEN = 'DASHBOARD_TEST_SETTINGS';

/** What the async factory and the guard read: a provider of an imported module. */
@Module({ providers: [{ provide: TOKEN, useValue: { secret: 's3cret', readOnly: false } }], exports: [TOKEN] })
class SettingsModule {}

/** A guard class with a dependency, resolved in the dashboard module (which imports SettingsModule). */
@Injectable()
class SecretGuard implements CanActivate {
  constructor(@Inject(TOKEN) private readonly settings: { secret: string }) {}
  canActivate(context: ExecutionContext): boolean {
    return context.switchToHttp().getRequest().headers['x-secret'] === this.settings.secret;
  }
}

/** The app's own global guard: it applies to the dashboard like to any controller. */
@Injectable()
class BlockGuard implements CanActivate {
  canActivate(context: ExecutionContext): boolean {
    return context.switchToHttp().getRequest().headers['x-block'] !== '1';
  }
}

/** The app's own global interceptor. */
@Injectable()
class StampInterceptor implements NestInterceptor {
  intercept(context: ExecutionContext, next: CallHandler) {
    const response = context.switchToHttp().getResponse();
    return next.handle().pipe(tap(() => (typeof response.header === 'function' ? response.header('x-stamp', 'yes') : response.setHeader('x-stamp', 'yes'))));
  }
}

describe.each(['express', 'fastify'] as const)('QueueDashboardModule.forRootAsync (%s)', (platform) => {
  const schema = uniqueSchema(`dash_mod_${platform}`);
  let app: INestApplication;

  beforeAll(async () => {
    @Module({
      imports: [
        TypeOrmModule.forRoot({ type: 'postgres', url: DATABASE_URL, synchronize: false, logging: false, poolSize: 4 } as never),
        QueueModule.forRoot({ schema, worker: false }),
        QueueDashboardModule.forRootAsync({
          path: '/ops/jobs/',
          imports: [SettingsModule],
          inject: [TOKEN],
          useFactory: (settings: { readOnly: boolean }) => ({ guards: [SecretGuard], readOnly: settings.readOnly }),
        }),
      ],
      providers: [{ provide: APP_GUARD, useClass: BlockGuard }, { provide: APP_INTERCEPTOR, useClass: StampInterceptor }],
    })
    class AsyncAppModule {}
    app = await NestFactory.create(AsyncAppModule, platform === 'fastify' ? new FastifyAdapter() : new ExpressAdapter(), { logger: false });
    app.setGlobalPrefix('v1');
    await app.init();
    if (platform === 'fastify') await app.getHttpAdapter().getInstance().ready();
  });

  afterAll(async () => {
    await app?.close();
    await dropSchema(schema);
  });

  it('mounts under the global prefix and path, runs the factory\'s guard with its dependency, and the app\'s global guard and interceptor', async () => {
    const http = () => request(app.getHttpServer());
    await http().get('/v1/ops/jobs').expect(403);
    const ok = await http().get('/v1/ops/jobs').set('x-secret', 's3cret').expect(200);
    expect(ok.headers['x-stamp']).toBe('yes');
    expect(ok.text).toContain('href="/v1/ops/jobs/jobs"');
    await http().get('/v1/ops/jobs').set({ 'x-secret': 's3cret', 'x-block': '1' }).expect(403);
    await http().get('/ops/jobs').set('x-secret', 's3cret').expect(404);
  });
});

describe('QueueDashboardModule options', () => {
  it.each([
    ['a path with a space', { path: 'my queues' }, 'dashboard.path'],
    ['guards that are not guards', { guards: [42] }, 'dashboard.guards'],
    ['a readOnly string', { readOnly: 'yes' }, 'dashboard.readOnly'],
    ['a redact object', { redact: {} }, 'dashboard.redact'],
    ['a negative cacheMs', { cacheMs: -1 }, 'dashboard.cacheMs'],
  ])('refuses %s, naming the option', (_what, options, option) => {
    let error: unknown;
    try {
      QueueDashboardModule.forRoot(options as never);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(InvalidModuleOptionsError);
    expect((error as Error).message).toContain(option);
  });
});
