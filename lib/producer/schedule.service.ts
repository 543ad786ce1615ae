import { Injectable, Logger } from '@nestjs/common';
import { QueueDatabase } from '../database/queue-database';
import { ScheduleRepository } from '../database/schedule.repository';
import { InvalidJobOptionError } from '../errors/invalid-job-option.error';
import { ScheduleNotFoundError } from '../errors/schedule-not-found.error';
import { assertKnownKeys } from './job-options.validator';
import { KNOWN_OPTIONS } from './known-options';
import { assertScheduleKey, validateSchedule } from '../schedules/schedule-spec.validator';
import { CronExpression } from '../schedules/cron-expression';
import type { Job } from '../interfaces/job.interface';
import type { ScheduleInfo, ScheduleSpec } from '../interfaces/schedule.interface';

/**
 * The runtime side of cron schedules, behind `QueueService.schedule()` and friends: validates, and
 * writes the schedule table. Works from any process (`worker: false` too); the workers' enqueuers
 * hear every change on the table's channel.
 */
@Injectable()
export class ScheduleService {
  private readonly logger = new Logger('QueueScheduler');
  private repository?: ScheduleRepository;

  constructor(private readonly database: QueueDatabase) {}

  async schedule(key: string, spec: ScheduleSpec): Promise<ScheduleInfo> {
    if (typeof spec !== 'object' || spec === null) throw new InvalidJobOptionError('spec', spec, 'an object { queue, name, cron, tz?, data?, options?, catchUp?, catchUpLimit?, overlap? }');
    assertKnownKeys(spec, KNOWN_OPTIONS.schedule, '');
    const row = validateSchedule(key, spec, spec);
    const schedules = await this.schedules();
    const next = row.expression.nextAfter(new Date(await schedules.now()))!;
    const saved = await schedules.upsertRuntime(row, next);
    if (!saved) throw new InvalidJobOptionError('key', key, 'a key no @Schedule declared in code uses (that schedule is managed by its decorator)');
    return saved;
  }

  async unschedule(key: string): Promise<boolean> {
    assertScheduleKey(key);
    const deleted = await (await this.schedules()).delete(key);
    if (deleted?.source === 'code') {
      // NOTE: allowed, for the schedule of a processor no service runs any more (no boot would
      // ever delete it); one still declared comes back at the next boot of its worker.
      this.logger.warn(`Schedule ${JSON.stringify(key)} declared in code (${deleted.declared_by}) was unscheduled: it returns at the next boot of a worker that still declares it`);
    }
    return deleted !== null;
  }

  async list(): Promise<ScheduleInfo[]> {
    return (await this.schedules()).list();
  }

  async pause(key: string): Promise<ScheduleInfo> {
    assertScheduleKey(key);
    const paused = await (await this.schedules()).pause(key);
    if (!paused) throw new ScheduleNotFoundError(key);
    return paused;
  }

  async resume(key: string): Promise<ScheduleInfo> {
    assertScheduleKey(key);
    const schedules = await this.schedules();
    const existing = await schedules.get(key);
    if (!existing) throw new ScheduleNotFoundError(key);
    const next = CronExpression.parse(existing.cron, existing.tz).nextAfter(new Date(await schedules.now()))!;
    const resumed = await schedules.resume(key, next);
    if (!resumed) throw new ScheduleNotFoundError(key);
    return resumed;
  }

  async trigger(key: string): Promise<Job> {
    assertScheduleKey(key);
    const schedules = await this.schedules();
    const id = await schedules.trigger(key);
    if (id === null) throw new ScheduleNotFoundError(key);
    return (await (await this.database.getRepository()).findById(id))!;
  }

  private async schedules(): Promise<ScheduleRepository> {
    this.repository ??= new ScheduleRepository(await this.database.getRepository());
    return this.repository;
  }
}
