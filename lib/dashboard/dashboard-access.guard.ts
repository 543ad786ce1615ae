import { Inject, Injectable, type CanActivate, type ExecutionContext, type Type } from '@nestjs/common';
import { HttpAdapterHost, ModuleRef } from '@nestjs/core';
import { isObservable, lastValueFrom } from 'rxjs';
import { DASHBOARD_OPTIONS } from './dashboard.constants';
import type { QueueDashboardOptions } from './dashboard-options.interface';
import { DashboardForbiddenException } from './dashboard-http.errors';
import { isLoopback, isSameOrigin, secureResponse } from './dashboard-security';

/**
 * The one guard of every dashboard route: sets the security headers, runs the user's guards (or,
 * with none, fails closed), and checks every POST (same origin, not read-only). NOTE: the app's
 * global guards run before it, as for any controller.
 */
@Injectable()
export class DashboardAccessGuard implements CanActivate {
  private guards?: Promise<CanActivate[]>;

  constructor(
    @Inject(DASHBOARD_OPTIONS) private readonly options: QueueDashboardOptions,
    private readonly adapterHost: HttpAdapterHost,
    private readonly moduleRef: ModuleRef,
  ) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const http = context.switchToHttp();
    const request = http.getRequest();
    const state = secureResponse(this.adapterHost.httpAdapter, request, http.getResponse());
    const guards = await this.resolveGuards();
    if (guards.length === 0) {
      // NOTE: read per request, not at boot, so an app that sets NODE_ENV late is still covered.
      if (process.env.NODE_ENV === 'production') throw new DashboardForbiddenException('production-no-guard');
      if (!isLoopback(request)) throw new DashboardForbiddenException('loopback-only');
    }
    for (const guard of guards) {
      const verdict = guard.canActivate(context);
      const allowed = isObservable(verdict) ? await lastValueFrom(verdict) : await verdict;
      if (!allowed) throw new DashboardForbiddenException('guard');
    }
    const readOnly = this.options.readOnly;
    state.readOnly = typeof readOnly === 'function' ? readOnly(request) === true : readOnly === true;
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      if (!isSameOrigin(request)) throw new DashboardForbiddenException('cross-site');
      if (state.readOnly) throw new DashboardForbiddenException('read-only');
    }
    return true;
  }

  private resolveGuards(): Promise<CanActivate[]> {
    this.guards ??= Promise.all((this.options.guards ?? []).map((guard) =>
      typeof guard === 'function' ? this.moduleRef.create(guard as Type<CanActivate>) : Promise.resolve(guard)));
    return this.guards;
  }
}
