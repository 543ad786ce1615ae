import { SCHEDULE_METADATA } from '../queue.constants';
import type { ScheduleDecoratorOptions } from '../interfaces/schedule.interface';

/** What `@Schedule()` stores on its method: one entry per decorator. */
export interface ScheduleMetadata {
  cron: string;
  options: ScheduleDecoratorOptions;
}

/**
 * Runs the `@Handle(name)` job of this method on a cron schedule: one job per slot, across all
 * processes, each an ordinary job (retries, timeouts) that knows `job.scheduledFor` and
 * `job.scheduleKey`. Declared schedules are stored in the schedule table and reconciled at each
 * boot of a worker that has this processor (a changed expression takes effect, a removed
 * declaration is deleted). An invalid expression, zone or option fails the boot. The key defaults
 * to `<queue>:<job name>`; two declarations with one key fail the boot. See docs/schedules.md.
 *
 * @example
 * ```ts
 * @Handle('daily-summary')
 * @Schedule('0 7 * * *', { tz: 'Europe/Berlin', data: { kind: 'daily' } })
 * async daily(job: ActiveJob<{ kind: string }>) { ... }
 * ```
 */
export function Schedule(cron: string, options: ScheduleDecoratorOptions = {}): MethodDecorator {
  return (_target, _propertyKey, descriptor) => {
    const method = descriptor.value as object;
    const declared: ScheduleMetadata[] = Reflect.getMetadata(SCHEDULE_METADATA, method) ?? [];
    Reflect.defineMetadata(SCHEDULE_METADATA, [...declared, { cron, options }], method);
    return descriptor;
  };
}
