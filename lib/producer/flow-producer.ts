import { Logger } from '@nestjs/common';
import type { EntityManager } from 'typeorm';
import type { QueueDatabase } from '../database/queue-database';
import type { FlowNodeRow } from '../database/flow.repository';
import type { FlowLogEvent, NewJobRow } from '../database/job.repository';
import type { QueueWakeups } from '../worker/queue-wakeups';
import type { JobLifecycle } from '../worker/job-lifecycle';
import { tellDependencyFailure } from '../worker/flow-event-relay';
import { InvalidJobOptionError } from '../errors/invalid-job-option.error';
import { JobState, type Job } from '../interfaces/job.interface';
import type { FlowJob, JobOptions } from '../interfaces/job-options.interface';
import { KNOWN_OPTIONS } from './known-options';
import { assertKnownKeys } from './job-options.validator';
import { assertOnChildFailure } from './flow-options.validator';

/** Most jobs one `addFlow()` may insert. */
export const MAX_FLOW_JOBS = 10_000;
/** Deepest nesting of `children` one `addFlow()` accepts. */
export const MAX_FLOW_DEPTH = 100;

type RowMaker = (queue: string, name: string, data: unknown, options: JobOptions, dataPath: string) => NewJobRow;

/** Options of `addFlow()`. */
export interface AddFlowOptions {
  /** Insert the flow inside this TypeORM transaction: it exists only if the transaction commits. */
  manager?: EntityManager;
}

/** A flow as `addFlow()` returns it: the root job, with its children as inserted (to any depth). */
export type AddedFlow<T = unknown> = Job<T> & { children: AddedFlow[] };

/**
 * The producer side of flows and dependencies, behind `QueueService.addFlow()` and
 * `add(..., { dependsOn })`: validates the whole tree before anything is stored, inserts it in one
 * statement, wakes the queues of its leaves and tells the lifecycle hub which jobs are blocked.
 */
export class FlowProducer {
  private readonly logger = new Logger('QueueLifecycle');

  constructor(
    private readonly database: QueueDatabase,
    private readonly wakeups: QueueWakeups,
    private readonly lifecycle: JobLifecycle,
    private readonly toRow: RowMaker,
  ) {}

  async addFlow<T>(flow: FlowJob<T>, options: AddFlowOptions = {}): Promise<AddedFlow<T>> {
    if (typeof options !== 'object' || options === null) throw new InvalidJobOptionError('options', options, 'an object { manager? }');
    assertKnownKeys(options, ['manager'], 'options.');
    const nodes = this.flatten(flow);
    const jobs = await (await this.database.getFlows()).insertFlow(nodes, options.manager);
    // NOTE: in the user's transaction, nothing is durable yet: wake-ups come with its commit (NOTIFY).
    if (!options.manager) this.announce(jobs);
    // The tree, as given.
    const added: AddedFlow[] = jobs.map((job) => ({ ...job, children: [] }));
    nodes.forEach((node, i) => {
      if (node.parent !== null) added[node.parent].children.push(added[i]);
    });
    return added[0] as AddedFlow<T>;
  }

  /** `add()` of a job with `dependsOn` (validated already). */
  async addDependent<T>(row: NewJobRow, dependsOn: string[], onChildFailure: 'fail' | 'continue', manager?: EntityManager): Promise<Job<T>> {
    const job = await (await this.database.getFlows()).insertDependent(row, dependsOn, onChildFailure, manager);
    // NOTE: in the user's transaction, nothing is durable yet: wake-ups come with its commit (NOTIFY).
    if (!manager) this.announce([job]);
    return job as Job<T>;
  }

  /** Whether anyone in this process listens to flow events (then cancel and retry log them). */
  get listened(): boolean {
    return this.lifecycle.active;
  }

  /**
   * Tells the lifecycle hub what the flow trigger did to dependents in a cancel() or retry() of
   * this process, once it committed (a failed job is read back for its error).
   */
  tell(events: FlowLogEvent[]): void {
    const at = Date.now();
    for (const event of events) {
      const job = { id: event.id, queue: event.q, name: event.n };
      if (event.e !== 'failed') this.lifecycle.emit({ type: event.e, job, at });
      else void this.tellFailed(job.id);
    }
  }

  private tellFailed(id: string): Promise<void> {
    return tellDependencyFailure(this.database.repository, this.lifecycle, this.logger, id);
  }

  private announce(jobs: Job[]): void {
    const at = Date.now();
    for (const job of jobs) {
      if (job.state === JobState.Pending) this.wakeups.wake(job.queue, Math.max(0, job.runAt.getTime() - at));
      else if (job.state === JobState.Blocked && this.lifecycle.active) this.lifecycle.emit({ type: 'blocked', job: { id: job.id, queue: job.queue, name: job.name }, at });
    }
  }

  /** The tree in pre-order, every job validated and serialised (throws naming the first bad one). */
  private flatten(root: FlowJob): FlowNodeRow[] {
    const nodes: FlowNodeRow[] = [];
    // NOTE: iterative (no recursion limit of JS decides the depth); children in their given order.
    const stack: { job: FlowJob; path: string; parent: number | null; depth: number }[] = [{ job: root, path: 'flow', parent: null, depth: 1 }];
    while (stack.length > 0) {
      const { job, path, parent, depth } = stack.pop()!;
      if (typeof job !== 'object' || job === null) throw new InvalidJobOptionError(path, job, 'an object { queue, name, data, options?, children?, onChildFailure? }');
      assertKnownKeys(job, KNOWN_OPTIONS.flowJob, `${path}.`);
      if (depth > MAX_FLOW_DEPTH) throw new InvalidJobOptionError(path, '[FlowJob]', `a flow at most ${MAX_FLOW_DEPTH} levels deep`);
      if (nodes.length >= MAX_FLOW_JOBS) throw new InvalidJobOptionError('flow', '[FlowJob]', `a flow of at most ${MAX_FLOW_JOBS} jobs`);
      const options = job.options ?? {};
      if (typeof options === 'object' && options !== null) {
        for (const key of ['manager', 'unique', 'dependsOn', 'onChildFailure'] as const) {
          if (key in options) throw new InvalidJobOptionError(`${path}.options.${key}`, (options as Record<string, unknown>)[key], `no ${key} in a flow (onChildFailure goes on the flow job itself)`);
        }
      }
      assertOnChildFailure(`${path}.onChildFailure`, job.onChildFailure);
      const children = job.children ?? [];
      if (!Array.isArray(children)) throw new InvalidJobOptionError(`${path}.children`, children, 'an array of flow jobs');
      const row = this.toRow(job.queue, job.name, job.data, options, `${path}.data`);
      nodes.push({ row, parent, children: children.length, onChildFailure: job.onChildFailure ?? 'fail' });
      const index = nodes.length - 1;
      for (let i = children.length - 1; i >= 0; i--) stack.push({ job: children[i], path: `${path}.children[${i}]`, parent: index, depth: depth + 1 });
    }
    return nodes;
  }
}
