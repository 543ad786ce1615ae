import { HttpException, HttpStatus } from '@nestjs/common';

/** Why the dashboard refused a request (each has its own explanation on the 403 page). */
export type DashboardRefusal = 'production-no-guard' | 'loopback-only' | 'guard' | 'cross-site' | 'read-only';

/** A 403 of the dashboard's own access rules. */
export class DashboardForbiddenException extends HttpException {
  constructor(readonly reason: DashboardRefusal) {
    super(`dashboard access refused: ${reason}`, HttpStatus.FORBIDDEN);
  }
}

/** A 400 for a malformed query, form field or JSON the dashboard itself parsed. */
export class DashboardBadRequestException extends HttpException {
  constructor(message: string) {
    super(message, HttpStatus.BAD_REQUEST);
  }
}

/** A 404: no such queue, job, schedule or task. */
export class DashboardNotFoundException extends HttpException {
  constructor(message: string) {
    super(message, HttpStatus.NOT_FOUND);
  }
}
