import { DashboardBadRequestException } from './dashboard-http.errors';

const JOB_ID = /^[1-9]\d{0,18}$/;

/** A job id from the URL; anything else is a 400 (before it reaches the API). */
export function parseJobId(id: unknown): string {
  if (typeof id !== 'string' || !JOB_ID.test(id) || BigInt(id) > 9223372036854775807n) {
    throw new DashboardBadRequestException(`Invalid job id ${JSON.stringify(String(id).slice(0, 40))}: expected digits`);
  }
  return id;
}

/** A form field or query value that may be given once or repeated, as a list of strings. */
export function many(input: Record<string, unknown>, key: string): string[] {
  const value = input?.[key];
  if (value === undefined || value === '') return [];
  const list = Array.isArray(value) ? value : [value];
  if (!list.every((v): v is string => typeof v === 'string')) throw new DashboardBadRequestException(`Invalid ${key}: expected text`);
  return list;
}

/** One form field as text ('' when absent); a repeated one is a 400. */
export function field(input: Record<string, unknown>, key: string): string {
  const value = input?.[key];
  if (value === undefined) return '';
  if (typeof value !== 'string') throw new DashboardBadRequestException(`Invalid ${key}: give it once, as text`);
  return value;
}

/** A JSON text from a form (e.g. edited job data); a syntax error is a 400 that says where. */
export function parseJsonField(name: string, text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new DashboardBadRequestException(`Invalid JSON in ${name}: ${(error as Error).message}`);
  }
}

/** An optional positive integer field ('' → null: remove the override). */
export function optionalPositiveInt(input: Record<string, unknown>, key: string): number | null {
  const text = field(input, key).trim();
  if (text === '') return null;
  if (!/^\d{1,9}$/.test(text) || Number(text) < 1) throw new DashboardBadRequestException(`Invalid ${key} ${JSON.stringify(text.slice(0, 40))}: expected a whole number of at least 1, or empty for none`);
  return Number(text);
}
