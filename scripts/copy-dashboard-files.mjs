// Copies the dashboard's templates and static files next to its compiled code (tsc copies only .ts output).
import { cpSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
for (const folder of ['views', 'static']) {
  cpSync(join(root, 'lib/dashboard', folder), join(root, 'dist/lib/dashboard', folder), { recursive: true });
}
