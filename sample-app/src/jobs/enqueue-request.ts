import { BadRequestException } from '@nestjs/common';
import type { JobOptions } from '../../../lib';

/** The body of `POST /jobs`. */
export interface EnqueueRequest {
  queue: string;
  name: string;
  data: unknown;
  options: Omit<JobOptions, 'manager'>;
}

const OPTION_KEYS = ['priority', 'delayMs', 'runAt', 'maxAttempts', 'backoff', 'timeoutMs'] as const;

/**
 * Checks the shape only; the values (names, numbers, dates) are checked by QueueService.add(),
 * whose InvalidJobOptionError the QueueErrorFilter turns into a 400.
 */
export function parseEnqueueRequest(body: unknown): EnqueueRequest {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new BadRequestException('Body must be JSON like {"queue": "email", "name": "flaky-report", "data": {}, "options": {}}');
  }
  const { queue, name, data = {}, options = {} } = body as Record<string, unknown>;
  if (typeof options !== 'object' || options === null || Array.isArray(options)) throw new BadRequestException('options must be an object');
  const given = options as Record<string, unknown>;
  const unknown = Object.keys(given).filter((key) => !(OPTION_KEYS as readonly string[]).includes(key));
  if (unknown.length > 0) throw new BadRequestException(`Unknown option(s): ${unknown.join(', ')}; allowed: ${OPTION_KEYS.join(', ')}`);
  const parsed: Record<string, unknown> = { ...given };
  // JSON has no dates: runAt arrives as an ISO 8601 string.
  if (typeof given.runAt === 'string') parsed.runAt = new Date(given.runAt);
  return { queue: queue as string, name: name as string, data, options: parsed as EnqueueRequest['options'] };
}
