import { dashboardFolder } from './dashboard-files';
import { Eta } from 'eta';
import type { DashboardAssets } from './dashboard-assets';

/** What every page's layout needs. */
export interface PageContext {
  /** The dashboard's base path (`/api/queues`), without a trailing slash. */
  base: string;
  nonce: string;
  readOnly: boolean;
  title: string;
  /** The current navigation section. */
  section: string;
  /** A message of a fixed set (an action's outcome), or null. */
  notice: string | null;
}

/**
 * Renders the dashboard's pages with Eta, auto-escaping every `<%= %>` (data, errors and logs are
 * never written raw; only `<%~ %>` of our own partials and of the SVG charts built from numbers).
 */
export class DashboardViews {
  private readonly eta = new Eta({ views: dashboardFolder('views'), autoEscape: true, autoTrim: false, cache: true });

  constructor(private readonly assets: DashboardAssets) {}

  render(view: string, page: PageContext, data: Record<string, unknown>): string {
    return this.eta.render(view, {
      ...data,
      page,
      css: `${page.base}/static/${this.assets.nameOf('dashboard.css')}`,
      js: `${page.base}/static/${this.assets.nameOf('dashboard.js')}`,
    });
  }
}
