import { Logger } from '@nestjs/common';
import type { DeclarationOutcome, QueueRegistryRepository } from '../../database/queue-registry.repository';
import type { RegisteredQueue } from '../../discovery/handler.registry';
import type { QueueLimits } from '../../interfaces/processor-options.interface';
import { DEFAULT_CONCURRENCY } from '../../queue.constants';
import { LIMIT_NAMES, canonicalJson, describeLimits, effectiveLimits, pickLimits } from '../../limits/queue-limits';
import { PeriodicTask } from './periodic-task';

/**
 * Declares the limits this process's processors set in code (`@Processor(queue, { globalConcurrency,
 * ... })`) in the queue registry: at boot, before any claim, then again every `intervalMs` for
 * `leaseMs` (a declaration lapses like a lease when its worker dies), and withdraws them at
 * shutdown. Which declaration applies when workers disagree is decided in
 * lib/limits/declarations.ts; every change of the declared limits, and a declaration of this
 * process's that does not apply, is logged.
 */
export class LimitsDeclarer extends PeriodicTask {
  private readonly log = new Logger('QueueLimits');
  private readonly limits: Map<string, QueueLimits>;
  /** Queues whose declared limits are not this process's (said once, until that changes). */
  private readonly outranked = new Set<string>();
  /** The last renewal failed (the database is likely out of reach). */
  private renewalFailed = false;

  constructor(
    private readonly registry: QueueRegistryRepository,
    private readonly workerId: string,
    private readonly queues: RegisteredQueue[],
    private readonly leaseMs: number,
    intervalMs: number,
  ) {
    super('Limits declaration', intervalMs, async () => {
      try {
        this.report(await registry.declare(workerId, this.limits, leaseMs), 'renew');
        this.renewalFailed = false;
      } catch (error) {
        this.renewalFailed = true;
        throw error;
      }
    });
    this.limits = new Map(queues.map((q) => [q.queue, pickLimits(q.options)]));
  }

  /**
   * The first declaration, at boot: it also gives each queue without one its registry row, and
   * throws if it cannot be written (the boot fails). Resolves to the queues that have a limit in
   * effect once it is written (declared in code by the newest live declaration, or set at runtime),
   * as the registry said in that same exchange.
   */
  async declareAtBoot(): Promise<ReadonlySet<string>> {
    this.warnOfLocalConcurrencyAboveGlobal();
    const outcomes = await this.registry.declare(this.workerId, this.limits, this.leaseMs);
    this.report(outcomes, 'boot');
    const limited = outcomes.filter((o) => Object.values(effectiveLimits(o.after, o.overrides)).some((limit) => limit.value !== null));
    return new Set(limited.map((o) => o.queue));
  }

  override async stop(): Promise<void> {
    await super.stop();
    // NOTE: with the database out of reach, trying would only make the shutdown wait another
    // queryTimeoutMs: the declaration lapses by itself.
    if (this.renewalFailed) return;
    try {
      this.report(await this.registry.withdraw(this.workerId, [...this.limits.keys()]), 'withdraw');
    } catch (error) {
      // NOTE: not fatal: the declaration lapses by itself once its lease runs out.
      this.log.warn(`Could not withdraw this worker's declared limits (they lapse by themselves): ${(error as Error)?.message ?? error}`);
    }
  }

  private warnOfLocalConcurrencyAboveGlobal(): void {
    for (const { queue, options } of this.queues) {
      const concurrency = options.concurrency ?? DEFAULT_CONCURRENCY;
      if (options.globalConcurrency !== undefined && options.globalConcurrency < concurrency) {
        this.log.warn(
          `Queue "${queue}": globalConcurrency ${options.globalConcurrency} is below this process's concurrency ${concurrency}: ` +
            `the global limit wins, so at most ${options.globalConcurrency} of its jobs run at once across every process.`,
        );
      }
    }
  }

  private report(outcomes: DeclarationOutcome[], when: 'boot' | 'renew' | 'withdraw'): void {
    for (const o of outcomes) {
      const mine = this.limits.get(o.queue);
      const changed = canonicalJson(o.before) !== canonicalJson(o.after);
      if (changed && when === 'withdraw') {
        this.log.warn(`Queue "${o.queue}": this worker stops; the limits declared in code change: ${diffLimits(o.before, o.after)} (now by ${whom(o.afterBy, this.workerId)}).`);
      } else if (changed && (o.beforeBy.length > 0 || Object.keys(o.before).length > 0)) {
        // (The first declaration of a queue, nothing declared and nobody declaring, is no change.)
        const by = o.beforeBy.filter((id) => id !== this.workerId);
        this.log.warn(
          `Queue "${o.queue}": the limits declared in code change: ${diffLimits(o.before, o.after)} ` +
            `(declared before by ${by.length > 0 ? `worker(s) ${by.join(', ')}` : 'workers no longer running'}; now by ${whom(o.afterBy, this.workerId)}).`,
        );
      }
      const outranked = when !== 'withdraw' && mine !== undefined && canonicalJson(mine) !== canonicalJson(o.after) && o.afterBy.length > 0;
      if (outranked && !this.outranked.has(o.queue)) {
        this.log.warn(
          `Queue "${o.queue}": this process declares ${describeLimits(mine)}, but the newer declaration of ${whom(o.afterBy, this.workerId)} applies: ` +
            `${describeLimits(o.after)}. It applies while those workers run (the newest declaration among running workers wins); QueueService.updateQueue() overrides both.`,
        );
      }
      if (outranked) this.outranked.add(o.queue);
      else this.outranked.delete(o.queue);
      const overridden = LIMIT_NAMES.filter((k) => o.overrides[k] !== undefined && canonicalJson(o.overrides[k]) !== canonicalJson(o.after[k]));
      if (when === 'boot' && overridden.length > 0) {
        this.log.log(
          `Queue "${o.queue}": runtime overrides (QueueService.updateQueue) apply instead of the code's declaration: ` +
            overridden.map((k) => `${k} ${JSON.stringify(o.overrides[k])} (declared ${o.after[k] === undefined ? 'none' : JSON.stringify(o.after[k])})`).join(', '),
        );
      }
    }
  }
}

/** `globalConcurrency 5 → 10, rateLimit none → {"max":1,"perMs":1000}`: the limits that differ. */
function diffLimits(before: QueueLimits, after: QueueLimits): string {
  const text = (v: unknown) => (v === undefined ? 'none' : JSON.stringify(v));
  return LIMIT_NAMES.filter((k) => canonicalJson(before[k] ?? null) !== canonicalJson(after[k] ?? null))
    .map((k) => `${k} ${text(before[k])} → ${text(after[k])}`)
    .join(', ');
}

function whom(workers: string[], self: string): string {
  if (workers.length === 0) return 'no running worker';
  return workers.map((id) => (id === self ? `this worker (${id})` : `worker ${id}`)).join(', ');
}
