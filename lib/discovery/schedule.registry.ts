import { Injectable } from '@nestjs/common';
import { CATCH_ALL_HANDLER } from '../queue.constants';
import { DuplicateScheduleError } from '../errors/duplicate-schedule.error';
import { InvalidModuleOptionsError } from '../errors/invalid-module-options.error';
import { assertKnownKeys } from '../producer/job-options.validator';
import { KNOWN_OPTIONS } from '../producer/known-options';
import { validateSchedule, type ScheduleRow } from '../schedules/schedule-spec.validator';
import type { ScheduleMetadata } from '../decorators/schedule.decorator';

/** A schedule declared with `@Schedule`, validated. */
export interface DeclaredSchedule extends ScheduleRow {
  /** `Class.method`. */
  declaredBy: string;
}

/** The `@Schedule` declarations found at boot, by key (filled by the explorer, read by the worker). */
@Injectable()
export class ScheduleRegistry {
  private readonly schedules = new Map<string, DeclaredSchedule>();

  /**
   * Validates and adds the schedules of one handler method; throws `InvalidModuleOptionsError`
   * naming the method and option, or `DuplicateScheduleError` naming both methods of a key.
   */
  add(queue: string, jobName: string, declaredBy: string, declared: ScheduleMetadata[]): void {
    for (const { cron, options } of declared) {
      const fail = (option: string, value: unknown, expected: string) => new InvalidModuleOptionsError(`${declaredBy} @Schedule ${option}`, value, expected);
      if (jobName === CATCH_ALL_HANDLER) throw fail('handler', '@Handle()', "a named handler, @Handle('name'): a schedule's runs need a job name");
      if (typeof options !== 'object' || options === null) throw fail('options', options, 'an object');
      assertKnownKeys(options, KNOWN_OPTIONS.scheduleDecorator, '', fail);
      const key = options.key ?? `${queue}:${jobName}`;
      const row = validateSchedule(key, { queue, name: jobName, cron }, options, fail);
      const clash = this.schedules.get(row.key);
      if (clash) throw new DuplicateScheduleError(row.key, clash.declaredBy, declaredBy);
      this.schedules.set(row.key, { ...row, declaredBy });
    }
  }

  getAll(): DeclaredSchedule[] {
    return [...this.schedules.values()];
  }
}
