import { Injectable, type OnModuleInit } from '@nestjs/common';
import { DiscoveryService, MetadataScanner } from '@nestjs/core';
import { ON_QUEUE_EVENT_METADATA } from '../queue.constants';
import { QueueEventListeners } from '../events/queue-event-listeners';
import { InvalidQueueEventListenerError } from '../errors/invalid-queue-event-listener.error';
import { QUEUE_EVENT_TYPES, type QueueEvent } from '../interfaces/queue-event.interface';
import type { QueueEventSubscription } from '../decorators/on-queue-event.decorator';
import { assertKnownKeys, assertName } from '../producer/job-options.validator';
import { KNOWN_OPTIONS } from '../producer/known-options';

/**
 * Walks the app's providers at boot (`onModuleInit`, like the processor explorer) and registers
 * their `@OnQueueEvent` methods in {@link QueueEventListeners}. A bad type or option fails the boot.
 * A request-scoped provider cannot listen (an event has no request): the boot fails.
 */
@Injectable()
export class QueueEventExplorer implements OnModuleInit {
  constructor(
    private readonly discovery: DiscoveryService,
    private readonly scanner: MetadataScanner,
    private readonly listeners: QueueEventListeners,
  ) {}

  onModuleInit(): void {
    const seen = new Set<object>();
    for (const wrapper of this.discovery.getProviders()) {
      const instance = wrapper.instance as Record<string, unknown> | undefined;
      if (!instance || typeof instance !== 'object' || seen.has(instance)) continue;
      seen.add(instance);
      const perRequest = !wrapper.isDependencyTreeStatic();
      const prototype = Object.getPrototypeOf(instance) as Record<string, unknown>;
      for (const methodName of this.scanner.getAllMethodNames(prototype)) {
        const method = prototype[methodName] as (event: QueueEvent) => unknown;
        const subscriptions: QueueEventSubscription[] | undefined = Reflect.getMetadata(ON_QUEUE_EVENT_METADATA, method);
        if (!subscriptions) continue;
        const owner = `${instance.constructor.name}.${methodName}`;
        // NOTE: an event has no request to build a request-scoped instance for: refused rather
        // than never called.
        if (perRequest) throw new InvalidQueueEventListenerError(owner, 'scope of its provider', 'request', 'a singleton provider (no request-scoped dependency)');
        for (const { type, options } of subscriptions) {
          const fail = (option: string, value: unknown, expected: string) => new InvalidQueueEventListenerError(owner, option, value, expected);
          if (!QUEUE_EVENT_TYPES.includes(type)) throw fail('type', type, `one of ${QUEUE_EVENT_TYPES.join(', ')}`);
          if (typeof options !== 'object' || options === null) throw fail('options', options, 'an object { queue?, scope? }');
          assertKnownKeys(options, KNOWN_OPTIONS.onQueueEvent, '', fail);
          if (options.queue !== undefined) assertName('queue', options.queue, fail);
          const scope = options.scope ?? 'local';
          if (scope !== 'local' && scope !== 'global') throw fail('scope', scope, `'local' or 'global'`);
          this.listeners.add({ type, queue: options.queue, scope, owner, fn: (event) => method.call(instance, event) });
        }
      }
    }
  }
}
