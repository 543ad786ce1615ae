import { ArgumentsHost, Catch, HttpException, HttpStatus, Logger, type ExceptionFilter } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import { InvalidJobFilterError } from '../errors/invalid-job-filter.error';
import { InvalidJobOptionError } from '../errors/invalid-job-option.error';
import { InvalidJobDataError } from '../errors/invalid-job-data.error';
import { JobNotFoundError } from '../errors/job-not-found.error';
import { ScheduleNotFoundError } from '../errors/schedule-not-found.error';
import { InvalidJobStateError } from '../errors/invalid-job-state.error';
import { JobDependencyError } from '../errors/job-dependency.error';
import { UniqueKeyHeldError } from '../errors/unique-key-held.error';
import { AdminQueryTimeoutError } from '../errors/admin-query-timeout.error';
import { DashboardForbiddenException } from './dashboard-http.errors';
import { DashboardRenderer } from './dashboard-renderer.service';

/**
 * Answers every error of a dashboard route with an HTML page and the right status: the API's
 * input errors are 400 with their message, unknown jobs and schedules 404, a job in the wrong state
 * 409, a query timeout 503; anything else 500 without details (logged). Never an SQL error.
 */
@Catch()
export class DashboardExceptionFilter implements ExceptionFilter {
  private readonly logger = new Logger('QueueDashboard');

  constructor(private readonly renderer: DashboardRenderer, private readonly adapterHost: HttpAdapterHost) {}

  catch(error: unknown, host: ArgumentsHost): void {
    const http = host.switchToHttp();
    const request = http.getRequest();
    const response = http.getResponse();
    const { status, message } = this.describe(error);
    const refusal = error instanceof DashboardForbiddenException ? error.reason : null;
    const html = this.renderer.render(request, response, 'error', '', status === 403 ? 'Forbidden' : 'Error', { status, message, refusal });
    const adapter = this.adapterHost.httpAdapter;
    adapter.setHeader(response, 'Content-Type', 'text/html; charset=utf-8');
    adapter.reply(response, html, status);
  }

  private describe(error: unknown): { status: number; message: string } {
    if (error instanceof HttpException) return { status: error.getStatus(), message: error.message };
    if (error instanceof InvalidJobFilterError || error instanceof InvalidJobOptionError || error instanceof InvalidJobDataError) {
      return { status: HttpStatus.BAD_REQUEST, message: error.message };
    }
    if (error instanceof JobNotFoundError || error instanceof ScheduleNotFoundError) return { status: HttpStatus.NOT_FOUND, message: error.message };
    if (error instanceof InvalidJobStateError || error instanceof JobDependencyError || error instanceof UniqueKeyHeldError) {
      return { status: HttpStatus.CONFLICT, message: error.message };
    }
    if (error instanceof AdminQueryTimeoutError) return { status: HttpStatus.SERVICE_UNAVAILABLE, message: 'The database took too long to answer; try a narrower filter or try again.' };
    this.logger.error(`dashboard request failed: ${error instanceof Error ? error.stack : String(error)}`);
    return { status: HttpStatus.INTERNAL_SERVER_ERROR, message: 'Something went wrong on the server; it is logged.' };
  }
}
