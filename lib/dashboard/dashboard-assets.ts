import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { dashboardFolder } from './dashboard-files';

/** One static file of the dashboard, held in memory under its content-hashed name. */
export interface DashboardAsset {
  name: string;
  contentType: string;
  /** The file's text (all of them are UTF-8 text: served as a string, which every platform sends as it is). */
  body: string;
}

const FILES: { file: string; contentType: string }[] = [
  { file: 'dashboard.css', contentType: 'text/css; charset=utf-8' },
  { file: 'dashboard.js', contentType: 'text/javascript; charset=utf-8' },
];

/**
 * The dashboard's static files (lib/dashboard/static, copied into dist by the build), read once.
 * NOTE: each is served as `name.<hash>.ext`, so a long immutable cache is safe: a new version has a new name.
 */
export class DashboardAssets {
  private readonly byName = new Map<string, DashboardAsset>();
  private readonly hashed = new Map<string, string>();

  constructor(directory = dashboardFolder('static')) {
    for (const { file, contentType } of FILES) {
      const body = readFileSync(join(directory, file), 'utf8');
      const hash = createHash('sha256').update(body).digest('hex').slice(0, 12);
      const dot = file.lastIndexOf('.');
      const name = `${file.slice(0, dot)}.${hash}${file.slice(dot)}`;
      this.byName.set(name, { name, contentType, body });
      this.hashed.set(file, name);
    }
  }

  /** The served name of a file (`dashboard.css` → `dashboard.1a2b3c4d5e6f.css`). */
  nameOf(file: string): string {
    const name = this.hashed.get(file);
    if (!name) throw new Error(`no dashboard asset ${file}`);
    return name;
  }

  /** The asset served under this name, if any. */
  get(name: string): DashboardAsset | undefined {
    return this.byName.get(name);
  }
}
