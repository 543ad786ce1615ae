import { Module, type DynamicModule, type Provider } from '@nestjs/common';
import { DiscoveryModule } from '@nestjs/core';
import { QUEUE_MODULE_OPTIONS, RESOLVED_QUEUE_OPTIONS } from './queue.constants';
import { resolveQueueOptions } from './queue-options.resolver';
import { InvalidModuleOptionsError } from './errors/invalid-module-options.error';
import { QueueDatabase } from './database/queue-database';
import { SingleQueueModuleCheck } from './discovery/single-queue-module.check';
import { ProcessorMetadataAccessor } from './discovery/processor-metadata.accessor';
import { ProcessorExplorer } from './discovery/processor.explorer';
import { HandlerRegistry } from './discovery/handler.registry';
import { QueueService } from './producer/queue.service';
import { JobAdmin } from './producer/job-admin.service';
import { QueueWakeups } from './worker/queue-wakeups';
import { JobLifecycle } from './worker/job-lifecycle';
import { QueueWorker } from './worker/worker.service';
import { QueueEventListeners } from './events/queue-event-listeners';
import { QueueEventExplorer } from './discovery/queue-event.explorer';
import { JobEventsStore } from './events/job-events.store';
import { GlobalEventDemand } from './events/global-event-demand';
import { GlobalEventPublisher } from './events/global-event-publisher';
import { GlobalEventReceiver } from './events/global-event-receiver';
import { LocalEventRelay } from './events/local-event-relay';
import { JobWaiter } from './events/job-waiter';
import { JobEventsService } from './events/job-events.service';
import { ScheduleRegistry } from './discovery/schedule.registry';
import { ScheduleService } from './producer/schedule.service';
import { QueueObservability } from './observability/queue-observability.service';
import { QueueMetrics } from './observability/prometheus/queue-metrics.service';
import { QueueHealthService } from './observability/health/queue-health.service';
import { OutcomeTally } from './observability/outcome-tally';
import { QueueTracing } from './observability/tracing/queue-tracing.service';
import type {
  QueueModuleAsyncOptions,
  QueueModuleOptions,
  QueueOptionsFactory,
} from './interfaces/queue-module-options.interface';

/**
 * Background jobs in PostgreSQL. Import it once, in the root module; `QueueService` is then
 * injectable everywhere (the module is global) and every `@Processor` provider of the app is run
 * by this process's worker (unless `worker: false`).
 */
@Module({})
export class QueueModule {
  static forRoot(options: QueueModuleOptions = {}): DynamicModule {
    return QueueModule.build([{ provide: QUEUE_MODULE_OPTIONS, useValue: options }], []);
  }

  static forRootAsync(options: QueueModuleAsyncOptions): DynamicModule {
    return QueueModule.build(QueueModule.createAsyncProviders(options), options.imports ?? []);
  }

  private static build(optionProviders: Provider[], imports: DynamicModule['imports'] = []): DynamicModule {
    return {
      module: QueueModule,
      global: true,
      imports: [DiscoveryModule, ...imports],
      providers: [
        SingleQueueModuleCheck,
        ...optionProviders,
        // NOTE: validated in a factory so a bad option fails the boot with a typed error.
        { provide: RESOLVED_QUEUE_OPTIONS, useFactory: resolveQueueOptions, inject: [QUEUE_MODULE_OPTIONS] },
        QueueDatabase,
        ProcessorMetadataAccessor,
        HandlerRegistry,
        ProcessorExplorer,
        QueueWakeups,
        JobLifecycle,
        // Job events, waitForJob, progress and logs (issue 15 part B).
        QueueEventListeners,
        QueueEventExplorer,
        JobEventsStore,
        GlobalEventDemand,
        GlobalEventPublisher,
        GlobalEventReceiver,
        LocalEventRelay,
        JobWaiter,
        JobEventsService,
        QueueService,
        JobAdmin,
        QueueWorker,
        ScheduleRegistry,
        ScheduleService,
        QueueObservability,
        OutcomeTally,
        QueueTracing,
        QueueMetrics,
        QueueHealthService,
      ],
      exports: [QueueService, QueueHealthService, QueueMetrics],
    };
  }

  private static createAsyncProviders(options: QueueModuleAsyncOptions): Provider[] {
    if (options.useFactory) {
      return [{ provide: QUEUE_MODULE_OPTIONS, useFactory: options.useFactory, inject: options.inject ?? [] }];
    }
    const token = options.useExisting ?? options.useClass;
    if (!token) throw new InvalidModuleOptionsError('forRootAsync', '{}', 'one of useFactory, useClass or useExisting');
    const providers: Provider[] = [
      {
        provide: QUEUE_MODULE_OPTIONS,
        useFactory: (factory: QueueOptionsFactory) => factory.createQueueOptions(),
        inject: [token],
      },
    ];
    if (options.useClass) providers.push({ provide: options.useClass, useClass: options.useClass });
    return providers;
  }
}
