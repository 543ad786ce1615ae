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

  private pauseListener?: (queue: string) => void;

  /** Hears `QueueService.pause()` of this process (other processes' pauses arrive as notices). */
  subscribePauses(listener: (queue: string) => void): () => void {
    this.pauseListener = listener;
    return () => {
      if (this.pauseListener === listener) this.pauseListener = undefined;
    };
  }

  /** `queue` was paused (committed): the worker hands back what it claimed ahead of it. */
  paused(queue: string): void {
    this.pauseListener?.(queue);
  }
}
