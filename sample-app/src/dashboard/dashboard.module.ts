import { Module } from '@nestjs/common';
import { QueueDashboardModule } from '../../../lib/dashboard';
import { DemoDashboardGuard, dashboardUser } from './demo-dashboard.guard';

/**
 * The queue dashboard at /queues (`GET /` leads there), behind the demo guard: `admin` may act,
 * `viewer` is read-only. Apps import it from `nestjs-pg-queue/dashboard`.
 */
@Module({
  imports: [
    QueueDashboardModule.forRoot({
      path: 'queues',
      guards: [DemoDashboardGuard],
      readOnly: (request) => dashboardUser(request.headers.authorization) !== 'admin',
    }),
  ],
})
export class DashboardModule {}
