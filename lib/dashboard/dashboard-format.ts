import { DASHBOARD_COUNT_CAP } from './dashboard.constants';

/** Formatting helpers the templates use (their output is escaped by the template like any value). */
export const format = {
  /** A count, capped: 123456 → "100k+". */
  count(n: number): string {
    return n > DASHBOARD_COUNT_CAP ? `${DASHBOARD_COUNT_CAP / 1000}k+` : String(n);
  },
  /** A date as ISO text, or "—". */
  date(d: Date | string | null | undefined): string {
    if (d === null || d === undefined) return '—';
    const date = d instanceof Date ? d : new Date(d);
    return Number.isNaN(date.getTime()) ? '—' : date.toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z');
  },
  /** How long ago (or from now) a date is: "3m ago", "in 20s". */
  relative(d: Date | null | undefined, now = Date.now()): string {
    if (!d) return '—';
    const ms = d.getTime() - now;
    const text = duration(Math.abs(ms));
    return ms > 0 ? `in ${text}` : `${text} ago`;
  },
  /** A length of time: 850ms, 42s, 3m, 5h, 2d. */
  duration(ms: number): string {
    return duration(Math.max(0, Math.round(ms)));
  },
  /** JSON, indented, for a <pre>. */
  json(value: unknown): string {
    try {
      return JSON.stringify(value, null, 2) ?? 'undefined';
    } catch {
      return String(value);
    }
  },
};

function duration(ms: number): string {
  if (ms < 1000) return `${ms}ms`;
  const s = Math.round(ms / 1000);
  if (s < 120) return `${s}s`;
  const m = Math.round(s / 60);
  if (m < 120) return `${m}m`;
  const h = Math.round(m / 60);
  return h < 48 ? `${h}h` : `${Math.round(h / 24)}d`;
}

/**
 * A small bar chart as inline SVG markup, built from numbers only (so it is safe to write raw):
 * one bar per value, scaled to the largest.
 */
export function barChart(values: number[], cssClass: string, label: string): string {
  const width = 120;
  const height = 24;
  const max = Math.max(1, ...values);
  const step = width / Math.max(1, values.length);
  const bars = values
    .map((v, i) => {
      const h = v === 0 ? 0 : Math.max(1, Math.round((v / max) * height));
      return `<rect x="${(i * step).toFixed(1)}" y="${height - h}" width="${Math.max(1, step - 0.5).toFixed(1)}" height="${h}"/>`;
    })
    .join('');
  const total = values.reduce((a, b) => a + b, 0);
  const title = `${label}: ${total} in the last hour, at most ${Math.max(0, ...values)} a minute`;
  return `<svg class="chart ${cssClass}" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" role="img" aria-label="${title}"><title>${title}</title>${bars}</svg>`;
}
