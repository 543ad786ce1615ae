import { Injectable, type Type } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { HANDLE_CLASS_METADATA, HANDLE_METADATA, PROCESSOR_METADATA, SCHEDULE_METADATA } from '../queue.constants';
import type { ProcessorMetadata } from '../decorators/processor.decorator';
import type { ScheduleMetadata } from '../decorators/schedule.decorator';

/** Typed reads of the metadata `@Processor` and `@Handle` leave. */
@Injectable()
export class ProcessorMetadataAccessor {
  constructor(private readonly reflector: Reflector) {}

  getProcessor(target: Type | Function): ProcessorMetadata | undefined {
    return this.reflector.get(PROCESSOR_METADATA, target);
  }

  /** The job name a method handles (`'*'` for the catch-all), or undefined if it is no handler. */
  getHandledName(method: Function): string | undefined {
    return this.reflector.get(HANDLE_METADATA, method);
  }

  /** Names of the methods of a class that carry `@Handle`. */
  getHandleMethods(target: Function): (string | symbol)[] {
    return Reflect.getMetadata(HANDLE_CLASS_METADATA, target) ?? [];
  }

  /** The `@Schedule` declarations of a method (none: empty). */
  getSchedules(method: Function): ScheduleMetadata[] {
    return Reflect.getMetadata(SCHEDULE_METADATA, method) ?? [];
  }
}
