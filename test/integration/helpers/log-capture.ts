import type { LoggerService } from '@nestjs/common';

export interface LogEntry {
  level: 'log' | 'error' | 'warn' | 'debug' | 'verbose' | 'fatal';
  message: string;
  context?: string;
}

/**
 * A Nest logger that records what it is told, for tests that assert what the library logs. Pass it
 * as `logger` to `createTestApp`. Prints nothing unless TEST_LOGS is set.
 */
export class CapturingLogger implements LoggerService {
  readonly entries: LogEntry[] = [];

  log(message: unknown, context?: string): void {
    this.record('log', message, context);
  }
  error(message: unknown, ...rest: unknown[]): void {
    this.record('error', message, rest[rest.length - 1] as string | undefined);
  }
  warn(message: unknown, context?: string): void {
    this.record('warn', message, context);
  }
  debug(message: unknown, context?: string): void {
    this.record('debug', message, context);
  }
  verbose(message: unknown, context?: string): void {
    this.record('verbose', message, context);
  }
  fatal(message: unknown, context?: string): void {
    this.record('fatal', message, context);
  }

  /** The entries of `level` whose message matches `pattern`. */
  find(level: LogEntry['level'], pattern: RegExp): LogEntry[] {
    return this.entries.filter((e) => e.level === level && pattern.test(e.message));
  }

  private record(level: LogEntry['level'], message: unknown, context?: string): void {
    const text = typeof message === 'string' ? message : message instanceof Error ? message.message : JSON.stringify(message);
    this.entries.push({ level, message: text, context });
    if (process.env.TEST_LOGS) console.log(`[${level}] ${context ?? ''} ${text}`);
  }
}
