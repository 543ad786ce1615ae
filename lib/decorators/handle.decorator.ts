import { HANDLE_CLASS_METADATA, HANDLE_METADATA, CATCH_ALL_HANDLER } from '../queue.constants';

/**
 * Marks a method of a `@Processor` class as the handler of the jobs named `name` in that queue. Without
 * a name it is the queue's catch-all: it runs jobs no named handler takes. The method receives an
 * {@link ActiveJob}; what it returns (JSON) is stored as the job's `result`; what it throws is a
 * failure, retried with backoff until `maxAttempts`.
 */
export function Handle(name?: string): MethodDecorator {
  return (target, propertyKey, descriptor) => {
    Reflect.defineMetadata(HANDLE_METADATA, name ?? CATCH_ALL_HANDLER, descriptor.value as object);
    // NOTE: remembered on the class too, so the explorer can reject @Handle in a class that lacks
    // @Processor instead of silently never running it.
    const methods: (string | symbol)[] = Reflect.getMetadata(HANDLE_CLASS_METADATA, target.constructor) ?? [];
    Reflect.defineMetadata(HANDLE_CLASS_METADATA, [...methods, propertyKey], target.constructor);
    return descriptor;
  };
}
