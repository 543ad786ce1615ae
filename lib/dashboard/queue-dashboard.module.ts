import { Module, type DynamicModule, type Provider } from '@nestjs/common';
import { RouterModule } from '@nestjs/core';
import { DASHBOARD_OPTIONS } from './dashboard.constants';
import type { QueueDashboardAsyncOptions, QueueDashboardOptions } from './dashboard-options.interface';
import { DashboardAccessGuard } from './dashboard-access.guard';
import { DashboardData } from './dashboard-data.service';
import { DashboardTasks } from './dashboard-tasks.service';
import { DashboardRenderer } from './dashboard-renderer.service';
import { DashboardExceptionFilter } from './dashboard-exception.filter';
import { DashboardPagesController } from './controllers/dashboard-pages.controller';
import { DashboardActionsController } from './controllers/dashboard-actions.controller';
import { InvalidModuleOptionsError } from '../errors/invalid-module-options.error';

const DEFAULT_PATH = 'queues';
const SERVICES: Provider[] = [DashboardAccessGuard, DashboardData, DashboardTasks, DashboardRenderer, DashboardExceptionFilter];

/**
 * The built-in web dashboard (`nestjs-pg-queue/dashboard`): real Nest controllers mounted under
 * `path` with `RouterModule`, so the app's global prefix, global guards and interceptors apply, on
 * Express and Fastify. Needs `QueueModule.forRoot()` in the app (it reads through `QueueService`).
 * Secure by default: see {@link QueueDashboardOptions.guards} and docs/dashboard.md.
 *
 * @example
 * ```ts
 * QueueDashboardModule.forRoot({ path: 'queues', guards: [AdminGuard], readOnly: (req) => !req.user?.admin })
 * ```
 */
@Module({})
export class QueueDashboardModule {
  /** The dashboard with these options. */
  static forRoot(options: QueueDashboardOptions = {}): DynamicModule {
    const path = checkPath(options.path);
    return QueueDashboardModule.build(path, [{ provide: DASHBOARD_OPTIONS, useValue: { ...checkOptions(options), path } }], []);
  }

  /** The dashboard with options from a factory (`path` is given here: routes are fixed before providers exist). */
  static forRootAsync(options: QueueDashboardAsyncOptions): DynamicModule {
    const path = checkPath(options.path);
    const provider: Provider = {
      provide: DASHBOARD_OPTIONS,
      inject: options.inject ?? [],
      useFactory: async (...args: unknown[]) => ({ ...checkOptions(await options.useFactory(...args)), path }),
    };
    return QueueDashboardModule.build(path, [provider], options.imports ?? []);
  }

  private static build(path: string, providers: Provider[], imports: DynamicModule['imports'] & unknown[]): DynamicModule {
    return {
      module: QueueDashboardModule,
      imports: [...imports, RouterModule.register([{ path, module: QueueDashboardModule }])],
      controllers: [DashboardPagesController, DashboardActionsController],
      providers: [...providers, ...SERVICES],
    };
  }
}

function checkPath(path: unknown): string {
  if (path === undefined) return DEFAULT_PATH;
  if (typeof path !== 'string' || !/^[A-Za-z0-9._~\-/]*$/.test(path)) {
    throw new InvalidModuleOptionsError('dashboard.path', path, 'a URL path (letters, digits, "-", "_", ".", "~", "/")');
  }
  return path.replace(/^\/+|\/+$/g, '');
}

function checkOptions<T extends Omit<QueueDashboardOptions, 'path'>>(options: T): T {
  if (typeof options !== 'object' || options === null) throw new InvalidModuleOptionsError('dashboard', options, 'an object');
  const { guards, readOnly, redact, cacheMs } = options;
  if (guards !== undefined && (!Array.isArray(guards) || guards.some((g) => typeof g !== 'function' && typeof (g as { canActivate?: unknown })?.canActivate !== 'function'))) {
    throw new InvalidModuleOptionsError('dashboard.guards', guards, 'an array of guard classes or objects with canActivate()');
  }
  if (readOnly !== undefined && typeof readOnly !== 'boolean' && typeof readOnly !== 'function') throw new InvalidModuleOptionsError('dashboard.readOnly', readOnly, 'a boolean or a function of the request');
  if (redact !== undefined && typeof redact !== 'function') throw new InvalidModuleOptionsError('dashboard.redact', redact, 'a function (job) => job');
  if (cacheMs !== undefined && (!Number.isInteger(cacheMs) || cacheMs < 0)) throw new InvalidModuleOptionsError('dashboard.cacheMs', cacheMs, 'an integer >= 0');
  return options;
}
