// Command-line options of the benchmark scripts: `--name <positive integer>`.
import { log } from './measure.mjs';

/**
 * Reads `--name value` for each name of `defaults` (a positive integer; the default when absent)
 * and exits with status 2 naming the first bad one.
 */
export function positiveIntegerArgs(defaults, argv = process.argv.slice(2)) {
  const values = {};
  for (const [name, fallback] of Object.entries(defaults)) {
    const i = argv.indexOf(`--${name}`);
    const value = i >= 0 && i + 1 < argv.length ? Number(argv[i + 1]) : fallback;
    if (!Number.isInteger(value) || value < 1) {
      log(`--${name} must be a positive integer, got ${value}`);
      process.exit(2);
    }
    values[name] = value;
  }
  return values;
}
