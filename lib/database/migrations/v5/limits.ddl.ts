import type { TableNaming } from '../../table-naming';

/** Schema step 5, the limits part (see ./README.md). */
export const limitsDdl = {
  up: (_n: TableNaming): string[] => [],
  down: (_n: TableNaming): string[] => [],
};
