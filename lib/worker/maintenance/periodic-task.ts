import { Logger } from '@nestjs/common';

/**
 * Runs `work` every `intervalMs`, never twice at once; errors are logged, never thrown. The base of
 * the maintenance services, each of which is its own start/stop unit.
 */
export class PeriodicTask {
  private timer?: NodeJS.Timeout;
  private soon?: NodeJS.Timeout;
  private running?: Promise<void>;
  private failing = false;
  private readonly logger: Logger;

  constructor(
    private readonly name: string,
    private readonly intervalMs: number,
    private readonly work: () => Promise<void>,
  ) {
    this.logger = new Logger(name);
  }

  start(): void {
    this.timer = setInterval(() => void this.runOnce(), this.intervalMs);
  }

  /**
   * Runs `work` once at a random moment within the next interval (the interval's own runs go on
   * beside it), for a task whose first run need not come at boot: a process's boot is when it is
   * busiest (its worker opens connections and makes its first claims), and the processes of a
   * deploy boot together. Spread, their first runs neither delay those claims nor arrive all at once.
   */
  runSoon(): void {
    clearTimeout(this.soon);
    this.soon = setTimeout(() => void this.runOnce(), Math.floor(Math.random() * this.intervalMs));
  }

  runOnce(): Promise<void> {
    this.running ??= this.work()
      .then(() => {
        if (this.failing) this.logger.log(`${this.name} resumed`);
        this.failing = false;
      })
      .catch((error) => {
        if (!this.failing) this.logger.warn(`${this.name} failed: ${(error as Error)?.message ?? error}`);
        this.failing = true;
      })
      .finally(() => (this.running = undefined));
    return this.running;
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    clearTimeout(this.soon);
    await this.running;
  }
}
