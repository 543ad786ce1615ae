import { Injectable } from '@nestjs/common';

type WakeListener = (queue: string, inMs: number) => void;

/**
 * In-process wake-ups: when `QueueService.add()` commits a job in a process that also runs that
 * queue's worker, the worker hears it directly instead of waiting for the NOTIFY round trip.
 */
@Injectable()
export class QueueWakeups {
  private listener?: WakeListener;

  subscribe(listener: WakeListener): () => void {
    this.listener = listener;
    return () => {
      if (this.listener === listener) this.listener = undefined;
    };
  }

  wake(queue: string, inMs = 0): void {
    this.listener?.(queue, inMs);
  }
}
