import { randomBytes } from 'node:crypto';
import type { AbstractHttpAdapter } from '@nestjs/core';
import type { DashboardRequest } from './dashboard-options.interface';

/** What the access guard found out about a request, kept on it for the controllers and the error page. */
export interface DashboardRequestState {
  /** The Content-Security-Policy nonce of this response. */
  nonce: string;
  /** This user may not change anything. */
  readOnly: boolean;
}

const STATE = Symbol('nestjs-pg-queue.dashboard');

/**
 * Sets the headers every dashboard response carries (once per request) and returns the request's
 * state. NOTE: the policy allows only scripts and styles that carry this response's nonce, and no
 * inline handlers or `style=` attributes: injected markup that slipped past escaping still cannot run.
 */
export function secureResponse(adapter: AbstractHttpAdapter, request: DashboardRequest, response: unknown): DashboardRequestState {
  const existing = request[STATE] as DashboardRequestState | undefined;
  if (existing) return existing;
  const state: DashboardRequestState = { nonce: randomBytes(16).toString('base64'), readOnly: true };
  request[STATE] = state;
  const csp = [
    "default-src 'none'",
    `script-src 'nonce-${state.nonce}'`,
    `style-src 'nonce-${state.nonce}'`,
    "img-src 'self' data:",
    "connect-src 'self'",
    "form-action 'self'",
    "frame-ancestors 'none'",
    "base-uri 'none'",
  ].join('; ');
  adapter.setHeader(response, 'Content-Security-Policy', csp);
  adapter.setHeader(response, 'X-Robots-Tag', 'noindex, nofollow');
  adapter.setHeader(response, 'X-Content-Type-Options', 'nosniff');
  adapter.setHeader(response, 'X-Frame-Options', 'DENY');
  adapter.setHeader(response, 'Referrer-Policy', 'same-origin');
  adapter.setHeader(response, 'Cache-Control', 'no-store');
  return state;
}

/** The state {@link secureResponse} stored on the request, if the guard ran. */
export function requestState(request: DashboardRequest): DashboardRequestState | undefined {
  return request?.[STATE] as DashboardRequestState | undefined;
}

/**
 * True when the TCP peer is the loopback address. NOTE: the socket's address, never a forwarded
 * header, which any client can send; behind a reverse proxy on the same host every request looks
 * local, which is why a guard is the real protection (see docs/dashboard.md).
 */
export function isLoopback(request: DashboardRequest): boolean {
  const address: string | undefined = request.socket?.remoteAddress ?? request.raw?.socket?.remoteAddress;
  if (!address) return false;
  return address === '::1' || address.startsWith('127.') || address.startsWith('::ffff:127.');
}

/**
 * True when a mutation comes from a page of this very site: the browser says so in
 * `Sec-Fetch-Site: same-origin`, or (older browsers) the `Origin` header names this host. A
 * request with neither is refused: fail closed against cross-site request forgery.
 */
export function isSameOrigin(request: DashboardRequest): boolean {
  const headers = request.headers ?? {};
  const site = headers['sec-fetch-site'];
  if (site !== undefined) return site === 'same-origin';
  const origin = headers.origin;
  if (typeof origin !== 'string' || origin === 'null') return false;
  try {
    return new URL(origin).host === headers.host;
  } catch {
    return false;
  }
}
