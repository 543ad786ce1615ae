import { QueueError } from './queue.error';

/**
 * An option needs an optional peer dependency that is not installed (`prom-client` for `metrics`,
 * `@nestjs/terminus` for the health indicator, …). The app fails to boot naming what to install.
 */
export class MissingPeerDependencyError extends QueueError {
  constructor(
    readonly packageName: string,
    readonly neededBy: string,
    cause?: unknown,
  ) {
    super(`${neededBy} needs the package ${packageName}, which is not installed: npm install ${packageName}`, { cause });
  }
}
