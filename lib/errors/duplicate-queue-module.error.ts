import { QueueError } from './queue.error';

/**
 * `QueueModule.forRoot()`/`forRootAsync()` was imported more than once with different options in
 * one app. Both would be global, export the same `QueueService` and run every processor, so the
 * app fails to boot instead. Import it once, in the root module.
 */
export class DuplicateQueueModuleError extends QueueError {
  constructor(readonly instances: string[]) {
    super(
      `QueueModule is imported ${instances.length} times with different options: ${instances.join('; ')}. ` +
        'Import QueueModule.forRoot() (or forRootAsync()) once, in the root module: it is global, so QueueService is injectable everywhere.',
    );
  }
}
