import { Inject, Injectable } from '@nestjs/common';
import { ApplicationConfig, HttpAdapterHost } from '@nestjs/core';
import { DASHBOARD_OPTIONS } from './dashboard.constants';
import type { DashboardRequest, QueueDashboardOptions } from './dashboard-options.interface';
import { DashboardAssets } from './dashboard-assets';
import { DashboardViews, type PageContext } from './dashboard-views';
import { secureResponse } from './dashboard-security';
import { format, barChart } from './dashboard-format';
import { NOTICES } from './dashboard-notices';

/** Turns a view and its data into a page of this request (base path, nonce, read-only, notice). */
@Injectable()
export class DashboardRenderer {
  readonly assets = new DashboardAssets();
  private readonly views = new DashboardViews(this.assets);

  constructor(
    @Inject(DASHBOARD_OPTIONS) private readonly options: QueueDashboardOptions & { path: string },
    private readonly config: ApplicationConfig,
    private readonly adapterHost: HttpAdapterHost,
  ) {}

  /** The dashboard's base path under the app's global prefix, e.g. `/api/queues`. */
  get base(): string {
    // NOTE: read per call: the app sets its global prefix after the module is built.
    const parts = [this.config.getGlobalPrefix(), this.options.path].flatMap((p) => (p ?? '').split('/')).filter(Boolean);
    return `/${parts.join('/')}`;
  }

  /** The page's HTML. `notice` is a key of the fixed {@link NOTICES} (never text from the URL). */
  render(request: DashboardRequest, response: unknown, view: string, section: string, title: string, data: Record<string, unknown> = {}): string {
    const state = secureResponse(this.adapterHost.httpAdapter, request, response);
    const noticeKey = typeof request.query?.notice === 'string' ? request.query.notice : '';
    const template = Object.prototype.hasOwnProperty.call(NOTICES, noticeKey) ? NOTICES[noticeKey as keyof typeof NOTICES] : null;
    const count = typeof request.query?.n === 'string' && /^\d{1,12}$/.test(request.query.n) ? request.query.n : '0';
    const page: PageContext = { base: this.base, nonce: state.nonce, readOnly: state.readOnly, title, section, notice: template ? template.replace('{n}', count) : null };
    return this.views.render(view, page, { ...data, format, barChart });
  }
}
