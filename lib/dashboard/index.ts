/**
 * `nestjs-pg-queue/dashboard`: the built-in web dashboard. A subpath of its own so apps that do
 * not mount it never load its templates or controllers.
 */
export { QueueDashboardModule } from './queue-dashboard.module';
export type { QueueDashboardOptions, QueueDashboardAsyncOptions, DashboardRequest } from './dashboard-options.interface';
