import type { TableNaming } from '../../table-naming';

/** Schema step 5, the observability part (see ./README.md). */
export const observabilityDdl = {
  up: (_n: TableNaming): string[] => [],
  down: (_n: TableNaming): string[] => [],
};
