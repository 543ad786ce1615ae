import type { TableNaming } from '../../table-naming';

/** Schema step 5, the flows part (see ./README.md). */
export const flowsDdl = {
  up: (_n: TableNaming): string[] => [],
  down: (_n: TableNaming): string[] => [],
};
