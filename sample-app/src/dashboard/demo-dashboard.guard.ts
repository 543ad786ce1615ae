import { Injectable, UnauthorizedException, type CanActivate, type ExecutionContext } from '@nestjs/common';
import { timingSafeEqual } from 'node:crypto';

/** The users of the demo: `admin` may change things, `viewer` only looks (see dashboard.module.ts). */
export const DASHBOARD_USERS = ['admin', 'viewer'] as const;

/**
 * A DEMO guard for the queue dashboard: HTTP Basic auth, users `admin` and `viewer`, both with the
 * password of `DASHBOARD_PASSWORD` (default `demo`). A real app uses its own authentication (a
 * session, an SSO guard, ...): this only shows where a guard goes.
 */
@Injectable()
export class DemoDashboardGuard implements CanActivate {
  private readonly password = Buffer.from(process.env.DASHBOARD_PASSWORD ?? 'demo');

  canActivate(context: ExecutionContext): boolean {
    const request = context.switchToHttp().getRequest();
    const user = dashboardUser(request.headers.authorization, this.password);
    if (user) return true;
    // NOTE: the challenge makes the browser ask for a user and password.
    context.switchToHttp().getResponse().setHeader('WWW-Authenticate', 'Basic realm="queue dashboard", charset="UTF-8"');
    throw new UnauthorizedException('Sign in as admin or viewer (password: DASHBOARD_PASSWORD, "demo" by default)');
  }
}

/** The demo user an `Authorization: Basic` header proves, or null. */
export function dashboardUser(header: unknown, password: Buffer = Buffer.from(process.env.DASHBOARD_PASSWORD ?? 'demo')): (typeof DASHBOARD_USERS)[number] | null {
  if (typeof header !== 'string' || !header.startsWith('Basic ')) return null;
  const decoded = Buffer.from(header.slice(6), 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  const user = decoded.slice(0, colon);
  const given = Buffer.from(decoded.slice(colon + 1));
  if (colon < 0 || !(DASHBOARD_USERS as readonly string[]).includes(user)) return null;
  return given.length === password.length && timingSafeEqual(given, password) ? (user as (typeof DASHBOARD_USERS)[number]) : null;
}
