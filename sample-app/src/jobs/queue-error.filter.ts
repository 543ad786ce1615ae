import { Catch, HttpStatus, Logger, type ArgumentsHost, type ExceptionFilter } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import {
  InvalidJobDataError,
  InvalidJobOptionError,
  InvalidJobStateError,
  JobNotFoundError,
  QueueError,
  QueueUnavailableError,
} from '../../../lib';

/** Turns the queue's typed errors into HTTP answers: bad input 400, unknown job 404, wrong state 409. */
@Catch(QueueError)
export class QueueErrorFilter implements ExceptionFilter {
  private readonly logger = new Logger(QueueErrorFilter.name);

  constructor(private readonly adapterHost: HttpAdapterHost) {}

  catch(error: QueueError, host: ArgumentsHost): void {
    const status = statusOf(error);
    if (status >= 500) this.logger.error(error.message, error.stack);
    const { httpAdapter } = this.adapterHost;
    httpAdapter.reply(host.switchToHttp().getResponse(), { statusCode: status, error: error.name, message: error.message }, status);
  }
}

function statusOf(error: QueueError): HttpStatus {
  if (error instanceof InvalidJobOptionError || error instanceof InvalidJobDataError) return HttpStatus.BAD_REQUEST;
  if (error instanceof JobNotFoundError) return HttpStatus.NOT_FOUND;
  if (error instanceof InvalidJobStateError) return HttpStatus.CONFLICT;
  if (error instanceof QueueUnavailableError) return HttpStatus.SERVICE_UNAVAILABLE;
  return HttpStatus.INTERNAL_SERVER_ERROR;
}
