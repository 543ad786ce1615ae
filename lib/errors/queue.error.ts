/** Base class of every error nestjs-pg-queue throws, so callers can tell them apart with `instanceof`. */
export class QueueError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}
