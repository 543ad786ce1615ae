import { Injectable, type OnModuleInit, type Type } from '@nestjs/common';
import { ContextIdFactory, DiscoveryService, MetadataScanner, ModuleRef } from '@nestjs/core';
import type { InstanceWrapper } from '@nestjs/core/injector/instance-wrapper';
import { ProcessorMetadataAccessor } from './processor-metadata.accessor';
import { HandlerRegistry } from './handler.registry';
import { ScheduleRegistry } from './schedule.registry';
import { HandleWithoutProcessorError } from '../errors/handle-without-processor.error';
import { InvalidModuleOptionsError } from '../errors/invalid-module-options.error';
import { validateProcessorOptions } from '../producer/job-options.validator';
import type { ActiveJob } from '../interfaces/job.interface';

/**
 * Walks the app's providers at boot, finds `@Processor` classes and their `@Handle` methods, and
 * fills the {@link HandlerRegistry}. Misuse (duplicate handlers, `@Handle` without `@Processor`,
 * bad processor options) fails the boot.
 */
@Injectable()
export class ProcessorExplorer implements OnModuleInit {
  constructor(
    private readonly discovery: DiscoveryService,
    private readonly scanner: MetadataScanner,
    private readonly accessor: ProcessorMetadataAccessor,
    private readonly registry: HandlerRegistry,
    private readonly moduleRef: ModuleRef,
    private readonly schedules: ScheduleRegistry,
  ) {}

  onModuleInit(): void {
    this.explore();
  }

  explore(): void {
    // NOTE: a provider exported and imported across modules is listed once per module; visit each
    // instance once so it is not reported as its own duplicate.
    const seen = new Set<object>();
    for (const wrapper of this.discovery.getProviders()) {
      if (!wrapper.instance || seen.has(wrapper.instance)) continue;
      seen.add(wrapper.instance);
      this.exploreProvider(wrapper);
    }
  }

  private exploreProvider(wrapper: InstanceWrapper): void {
    const { instance, metatype } = wrapper;
    if (!instance || !metatype || typeof metatype !== 'function' || typeof instance !== 'object') return;
    const target = instance.constructor as Function;
    const processor = this.accessor.getProcessor(target);
    if (!processor) {
      const stray = this.accessor.getHandleMethods(target);
      if (stray.length > 0) throw new HandleWithoutProcessorError(target.name, String(stray[0]));
      return;
    }
    validateProcessorOptions(processor.queue, processor.options, target.name);
    this.registry.addProcessor(processor.queue, target.name, processor.options);
    // NOTE: a processor that depends on a request-scoped provider is request-scoped itself, and the
    // instance discovery sees is only a placeholder without its dependencies. Such a processor gets a
    // fresh instance per job, in a DI context of the job's own where `REQUEST` is the job (as
    // @nestjs/bullmq does).
    const perJob = !wrapper.isDependencyTreeStatic();
    const prototype = Object.getPrototypeOf(instance);
    for (const methodName of this.scanner.getAllMethodNames(prototype)) {
      const method = prototype[methodName];
      const jobName = this.accessor.getHandledName(method);
      if (jobName === undefined) {
        // NOTE: a @Schedule without @Handle would silently never run.
        if (typeof method === 'function' && this.accessor.getSchedules(method).length > 0) {
          throw new InvalidModuleOptionsError(`${target.name}.${methodName} @Schedule`, '(no @Handle)', "a method that also carries @Handle('name')");
        }
        continue;
      }
      this.registry.addHandler(
        processor.queue,
        jobName,
        perJob ? (job: ActiveJob) => this.runInJobContext(metatype as Type, methodName, job) : (job: ActiveJob) => method.call(instance, job),
        `${target.name}.${methodName}`,
      );
      const schedules = this.accessor.getSchedules(method);
      if (schedules.length > 0) this.schedules.add(processor.queue, jobName, `${target.name}.${methodName}`, schedules);
    }
  }

  private async runInJobContext(type: Type, methodName: string, job: ActiveJob): Promise<unknown> {
    const contextId = ContextIdFactory.create();
    this.moduleRef.registerRequestByContextId(job, contextId);
    const instance = await this.moduleRef.resolve<Record<string, (job: ActiveJob) => unknown>>(type, contextId, { strict: false });
    return instance[methodName](job);
  }
}
