import type { TableNaming } from '../../table-naming';

/** Schema step 5, the schedules part (see ./README.md). */
export const schedulesDdl = {
  up: (_n: TableNaming): string[] => [],
  down: (_n: TableNaming): string[] => [],
};
