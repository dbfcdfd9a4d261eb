import type { ErrorCode } from '../errors.js';

/** What the demo saw of one route (or of the messages that never reached one). */
export interface RouteTally {
  route: string;
  inserted: number;
  deadLettered: Map<string, number>;
  /** Publish time to settle, in ms, per message. */
  ages: number[];
  firstPublishAt: number | undefined;
  lastSettleAt: number | undefined;
}

export interface DeadLetterSeen {
  sourceId: string;
  code: string;
  route: string | undefined;
  message: string;
  ageMs: number;
}

export function newTally(route: string): RouteTally {
  return { route, inserted: 0, deadLettered: new Map(), ages: [], firstPublishAt: undefined, lastSettleAt: undefined };
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] as number;
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(2)} s`;
}

function table(rows: string[][]): string {
  const widths = rows[0]?.map((_, c) => Math.max(...rows.map((r) => (r[c] ?? '').length))) ?? [];
  return rows.map((r) => `  ${r.map((cell, c) => (c === 0 ? cell.padEnd(widths[c] ?? 0) : cell.padStart(widths[c] ?? 0))).join('  ')}`.trimEnd()).join('\n');
}

export function formatRouteSummary(tallies: RouteTally[]): string {
  const rows: string[][] = [['route', 'received', 'inserted', 'dead-lettered', 'rows/s', 'age at settle p50', 'p99', 'max']];
  for (const t of tallies) {
    const dead = [...t.deadLettered.values()].reduce((a, b) => a + b, 0);
    const sorted = [...t.ages].sort((a, b) => a - b);
    const window = t.firstPublishAt !== undefined && t.lastSettleAt !== undefined ? Math.max(1, t.lastSettleAt - t.firstPublishAt) : 0;
    rows.push([
      t.route,
      String(t.inserted + dead),
      String(t.inserted),
      String(dead),
      window === 0 ? '-' : String(Math.round((t.inserted * 1000) / window)),
      sorted.length === 0 ? '-' : seconds(percentile(sorted, 50)),
      sorted.length === 0 ? '-' : seconds(percentile(sorted, 99)),
      sorted.length === 0 ? '-' : seconds(sorted[sorted.length - 1] as number),
    ]);
  }
  return table(rows);
}

export function formatDeadLetters(seen: DeadLetterSeen[], expected: Map<string, ErrorCode>): string {
  return seen
    .map((d) => {
      const want = expected.get(d.sourceId);
      const mark = want === undefined ? ' (unexpected)' : want === d.code ? '' : ` (expected ${want})`;
      return `  ${d.code.padEnd(20)} ${(d.route ?? '-').padEnd(7)} ${d.message.length > 110 ? `${d.message.slice(0, 107)}...` : d.message}${mark}`;
    })
    .join('\n');
}

/** One row per line, as compact JSON, cut to the terminal's width. */
export function formatRows(rows: Array<Record<string, unknown>>, width: number): string {
  return rows
    .map((row) => {
      const text = JSON.stringify(row);
      return `    ${text.length > width - 4 ? `${text.slice(0, width - 7)}...` : text}`;
    })
    .join('\n');
}
