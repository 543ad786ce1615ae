import type { TableNaming } from '../../table-naming';

/** Schema step 5, the limits part (see ./README.md). */
export const limitsDdl = {
  up: (n: TableNaming): string[] => [
    // --- limits configuration (declarations of the workers; see lib/limits/declarations.ts) ---
    // NOTE: `declared` holds the winning declaration only (what the claim reads); which worker
    // declares what, and since when, is kept beside it.
    `ALTER TABLE ${n.queuesQualified} ADD COLUMN IF NOT EXISTS "declarations" jsonb NOT NULL DEFAULT '{}'`,
  ],
  down: (n: TableNaming): string[] => [
    // --- limits configuration ---
    `ALTER TABLE ${n.queuesQualified} DROP COLUMN IF EXISTS "declarations"`,
  ],
};
