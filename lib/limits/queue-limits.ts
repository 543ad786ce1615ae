import type { EffectiveQueueLimits, QueueLimitName, QueueLimits } from '../interfaces/processor-options.interface';

/** The limits of a queue, in the order they are reported. */
export const LIMIT_NAMES: readonly QueueLimitName[] = ['globalConcurrency', 'rateLimit', 'groupConcurrency', 'groupRateLimit'];

/** The limits among processor options (the rest, such as `concurrency`, are this process's own). */
export function pickLimits(options: QueueLimits): QueueLimits {
  const limits: Record<string, unknown> = {};
  for (const key of LIMIT_NAMES) if (options[key] !== undefined) limits[key] = options[key];
  return limits as QueueLimits;
}

/**
 * JSON with object keys sorted, so equal values give equal texts whatever order their keys were
 * written in (`{ perMs, max }` and `{ max, perMs }` are one rate limit).
 */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (typeof value === 'object' && value !== null) {
    const entries = Object.keys(value)
      .filter((k) => (value as Record<string, unknown>)[k] !== undefined)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonicalJson((value as Record<string, unknown>)[k])}`);
    return `{${entries.join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

/**
 * The contract with the claim: a limit's effective value is the override when `overrides` has the
 * key, else the declaration, else none.
 */
export function effectiveLimits(declared: QueueLimits, overrides: QueueLimits): EffectiveQueueLimits {
  const limits: Record<string, unknown> = {};
  for (const key of LIMIT_NAMES) {
    if (overrides[key] !== undefined) limits[key] = { value: overrides[key], source: 'runtime' };
    else if (declared[key] !== undefined) limits[key] = { value: declared[key], source: 'code' };
    else limits[key] = { value: null, source: 'none' };
  }
  return limits as EffectiveQueueLimits;
}

/** `limits` as `name value, name value` for log lines (`none` when empty). */
export function describeLimits(limits: QueueLimits): string {
  const parts = LIMIT_NAMES.filter((k) => limits[k] !== undefined).map((k) => `${k} ${JSON.stringify(limits[k])}`);
  return parts.length > 0 ? parts.join(', ') : 'no limits';
}
