/**
 * Cancellation of one attempt. Like an AbortController, but the AbortController (and its
 * AbortSignal, which Node builds as an EventTarget: microseconds per job) is only created when
 * the handler reads `job.signal`; most handlers never do.
 */
export class AttemptAbort {
  private abortReason: unknown = undefined;
  private controller?: AbortController;
  private listener?: () => void;

  get aborted(): boolean {
    return this.abortReason !== undefined;
  }

  get reason(): unknown {
    return this.abortReason;
  }

  get signal(): AbortSignal {
    if (!this.controller) {
      this.controller = new AbortController();
      if (this.aborted) this.controller.abort(this.abortReason);
    }
    return this.controller.signal;
  }

  /** Aborts once; later calls are ignored (the first reason wins). */
  abort(reason: Error): void {
    if (this.aborted) return;
    this.abortReason = reason;
    this.controller?.abort(reason);
    this.listener?.();
  }

  /** The one internal listener (the executor's), called on abort. */
  onAbort(listener: () => void): void {
    this.listener = listener;
  }

  throwIfAborted(): void {
    if (this.aborted) throw this.abortReason;
  }
}
