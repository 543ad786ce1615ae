import type { CanActivate, ModuleMetadata, Type } from '@nestjs/common';
import type { Job } from '../interfaces/job.interface';

/** The request as the dashboard's callbacks see it: the platform's own (Express or Fastify) request object. */
export type DashboardRequest = any; // eslint-disable-line @typescript-eslint/no-explicit-any

/** Options of `QueueDashboardModule.forRoot()`. */
export interface QueueDashboardOptions {
  /**
   * Where the dashboard is mounted (with `RouterModule`, so under the app's global prefix). Default `'queues'`.
   */
  path?: string;
  /**
   * Ordinary Nest guards (classes, resolved with the module's `imports`, or instances) that every
   * dashboard route runs, in order, after the app's global guards. With none, the dashboard fails
   * closed: it serves only requests from the loopback address, and with `NODE_ENV=production` it
   * serves nothing (every route answers 403 with a page that says how to add a guard).
   */
  guards?: (Type<CanActivate> | CanActivate)[];
  /**
   * True, or a function of the request answering true: that user sees no action and every POST
   * they send answers 403 (enforced on the server, not only by hiding buttons). Default false.
   */
  readOnly?: boolean | ((request: DashboardRequest) => boolean);
  /**
   * Applied to every job before it is shown (lists and detail): return the job as it may be shown,
   * e.g. `(job) => ({ ...job, data: mask(job.data) })`. A job whose shown data differs from its
   * stored data cannot be edited from the dashboard (the masked values would be saved).
   */
  redact?: (job: Job) => Job;
  /**
   * How long (ms) one process keeps the queue list and chart data before it reads them again, so
   * many open dashboards cost the database one read per interval. Default 2,000.
   */
  cacheMs?: number;
}

/** Options of `QueueDashboardModule.forRootAsync()`: `path` is given here (routes are fixed at boot), the rest by the factory. */
export interface QueueDashboardAsyncOptions extends Pick<ModuleMetadata, 'imports'> {
  /** Where the dashboard is mounted. Default `'queues'`. */
  path?: string;
  /** Providers the factory gets, in order. */
  inject?: (string | symbol | Type<unknown>)[];
  /** Builds the options (all but `path`). */
  useFactory: (...args: any[]) => Omit<QueueDashboardOptions, 'path'> | Promise<Omit<QueueDashboardOptions, 'path'>>; // eslint-disable-line @typescript-eslint/no-explicit-any
}
