import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';

/**
 * The folder of the dashboard's templates (`views`) or static files (`static`): beside this file
 * (the source, or dist after `npm run build` copied them), else in the package's lib/dashboard
 * (code compiled elsewhere, e.g. the sample app's own build).
 */
export function dashboardFolder(folder: 'views' | 'static'): string {
  const beside = join(__dirname, folder);
  if (existsSync(beside)) return beside;
  for (let dir = __dirname; dirname(dir) !== dir; dir = dirname(dir)) {
    const candidate = join(dir, 'lib', 'dashboard', folder);
    if (existsSync(candidate)) return candidate;
  }
  throw new Error(`nestjs-pg-queue dashboard: its ${folder} folder is missing (expected at ${beside})`);
}
