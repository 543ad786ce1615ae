import type { Logger } from '@nestjs/common';
import type { ScheduleRepository } from '../database/schedule.repository';
import type { DeclaredSchedule } from '../discovery/schedule.registry';

/**
 * Brings the schedule table in line with the `@Schedule` declarations of this process, at a
 * worker's boot: new ones are created, changed ones updated (a changed expression or zone moves the
 * next run to its first slot after now, as the database's clock says), and code schedules of the
 * queues this process has a processor for that are no longer declared are deleted. Runtime
 * schedules are never touched (a declared key held by one is reported and skipped), nor are the
 * code schedules of other queues (another service owns them). Two app versions booting at once
 * each write their own declarations, last one wins; the slot index still gives one job per slot.
 */
export async function reconcileSchedules(schedules: ScheduleRepository, declared: DeclaredSchedule[], queues: string[], logger: Logger): Promise<void> {
  if (declared.length === 0 && queues.length === 0) return;
  const now = new Date(await schedules.now());
  const rows = declared.map((d) => ({ ...d, nextRunAt: d.expression.nextAfter(now)! }));
  const { created, updated, deleted, heldByRuntime } = await schedules.reconcile(queues, rows);
  for (const key of heldByRuntime) {
    const d = declared.find((s) => s.key === key)!;
    logger.warn(`@Schedule ${JSON.stringify(key)} of ${d.declaredBy} is not applied: a runtime schedule (queue.schedule()) has that key; give the declaration another key, or unschedule the runtime one`);
  }
  const changes = [
    ...(created.length > 0 ? [`created ${created.map((k) => JSON.stringify(k)).join(', ')}`] : []),
    ...(updated.length > 0 ? [`updated ${updated.map((k) => JSON.stringify(k)).join(', ')}`] : []),
    ...(deleted.length > 0 ? [`deleted ${deleted.map((k) => JSON.stringify(k)).join(', ')} (no longer declared)`] : []),
  ];
  if (changes.length > 0) logger.log(`Schedules reconciled: ${changes.join('; ')}`);
}
