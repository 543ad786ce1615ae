import { Injectable, Logger, type BeforeApplicationShutdown } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import type { BulkActionOptions, BulkActionProgress, JobSelection } from '../interfaces/job-admin.interface';

/** A bulk action on every job matching a filter, run in the background by this process. */
export interface DashboardTask {
  id: string;
  /** What it does, e.g. "retry". */
  action: string;
  /** What it applies to, as shown to the user. */
  description: string;
  startedAt: Date;
  finishedAt: Date | null;
  progress: BulkActionProgress;
  /** The error that stopped it, if one did. */
  error: string | null;
}

/** Keeps the last this many tasks for their progress pages. */
const KEEP = 50;

/**
 * Runs the dashboard's bulk actions on filters in the background (the API runs them in paced
 * batches; a million jobs take minutes, longer than a request should), and remembers their
 * progress for the task page. NOTE: per process: the progress page must be served by the process
 * that started the task (it says so otherwise); the action itself is safe across processes.
 */
@Injectable()
export class DashboardTasks implements BeforeApplicationShutdown {
  private readonly logger = new Logger('QueueDashboard');
  private readonly tasks = new Map<string, DashboardTask>();
  private readonly running = new Map<string, { abort: AbortController; done: Promise<void> }>();

  start(action: string, description: string, run: (selection: JobSelection, options: BulkActionOptions) => Promise<number>, selection: JobSelection): DashboardTask {
    const task: DashboardTask = { id: randomUUID(), action, description, startedAt: new Date(), finishedAt: null, progress: { affected: 0, examined: 0, batches: 0 }, error: null };
    this.tasks.set(task.id, task);
    for (const id of this.tasks.keys()) {
      if (this.tasks.size <= KEEP) break;
      if (!this.running.has(id)) this.tasks.delete(id);
    }
    const abort = new AbortController();
    const done = run(selection, { signal: abort.signal, onProgress: (p) => { task.progress = { ...p }; } })
      .then((affected) => { task.progress = { ...task.progress, affected }; })
      .catch((error: unknown) => {
        task.error = error instanceof Error ? error.message : String(error);
        this.logger.warn(`bulk ${action} (${description}) stopped: ${task.error}`);
      })
      .finally(() => { task.finishedAt = new Date(); this.running.delete(task.id); });
    this.running.set(task.id, { abort, done });
    return task;
  }

  get(id: string): DashboardTask | undefined {
    return this.tasks.get(id);
  }

  /** Stops running tasks between two batches (what the done batches did stays done). */
  async beforeApplicationShutdown(): Promise<void> {
    const running = [...this.running.values()];
    for (const r of running) r.abort.abort();
    await Promise.all(running.map((r) => r.done));
  }
}
