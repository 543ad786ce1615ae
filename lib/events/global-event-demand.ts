import { Injectable } from '@nestjs/common';
import { JobEventsStore } from './job-events.store';
import { PeriodicTask } from '../worker/maintenance/periodic-task';
import { eventCode } from './queue-event.mapper';
import type { QueueEventType } from '../interfaces/queue-event.interface';

/** How often a writing process re-reads which event types some process listens to globally. */
export const DEMAND_REFRESH_MS = 2000;
/** Shortest gap between two re-reads prompted by `listeners` notices. */
export const NOTICE_REFRESH_GAP_MS = 200;

/**
 * Which event types some process of this database listens to globally (their presence locks, see
 * the job events statements), as last read. Writers send global events only for those: a cluster
 * where nobody listens globally sends no NOTIFY at all. A process that starts listening says so
 * (a `listeners` notification), so writers that LISTEN re-read at once; the periodic re-read
 * catches the rest, and notices listeners that went away.
 */
@Injectable()
export class GlobalEventDemand {
  private codes = new Set<number>();
  private readAt = 0;
  private reading?: Promise<void>;
  private again = false;
  private task?: PeriodicTask;
  private soon?: NodeJS.Timeout;
  private readonly changeListeners: (() => void)[] = [];

  constructor(private readonly store: JobEventsStore) {}

  /**
   * Reads now, and every {@link DEMAND_REFRESH_MS} from then on (the worker of a process that runs
   * jobs). Resolves after the first read (which never rejects: a failure is logged and retried).
   */
  startWatching(): Promise<void> {
    if (this.task) return Promise.resolve();
    this.task = new PeriodicTask('Global event listeners check', DEMAND_REFRESH_MS, () => this.refresh());
    this.task.start();
    return this.task.runOnce();
  }

  async stop(): Promise<void> {
    clearTimeout(this.soon);
    this.soon = undefined;
    await this.task?.stop();
    this.task = undefined;
  }

  /** Whether some process listens globally to `type`. */
  wants(type: QueueEventType): boolean {
    return this.codes.has(eventCode(type));
  }

  /** Whether some process listens globally to anything. */
  get any(): boolean {
    return this.codes.size > 0;
  }

  /** Calls `listener` whenever the set of wanted types changes. */
  onChange(listener: () => void): void {
    this.changeListeners.push(listener);
  }

  /**
   * Re-reads soon: at most one read per {@link NOTICE_REFRESH_GAP_MS}, however many notices come
   * (anyone who can connect can send one). Errors are ignored (the next read retries).
   */
  refreshSoon(): void {
    if (this.soon) return;
    this.soon = setTimeout(() => {
      this.soon = undefined;
      this.refresh().catch(() => undefined);
    }, Math.max(0, this.readAt + NOTICE_REFRESH_GAP_MS - Date.now()));
    this.soon.unref();
  }

  /** Re-reads unless the last read is younger than `maxAgeMs`. Never rejects. */
  async ensureFresh(maxAgeMs = 1000): Promise<void> {
    if (Date.now() - this.readAt <= maxAgeMs) return;
    await this.refresh().catch(() => undefined);
  }

  /** Reads the wanted types now; a call during a read makes that read run once more. */
  refresh(): Promise<void> {
    if (this.reading) {
      this.again = true;
      return this.reading;
    }
    this.reading = (async () => {
      try {
        do {
          this.again = false;
          const codes = new Set(await (await this.store.get()).listenedTypeCodes());
          this.readAt = Date.now();
          const changed = codes.size !== this.codes.size || [...codes].some((c) => !this.codes.has(c));
          this.codes = codes;
          if (changed) for (const listener of this.changeListeners) listener();
        } while (this.again);
      } finally {
        this.reading = undefined;
      }
    })();
    return this.reading;
  }
}
