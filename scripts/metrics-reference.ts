import { Metrics } from '../src/ops/metrics.js';

/*
 * The metrics reference in docs/operations.md, rendered from the registry the worker exposes on
 * /metrics: every metric's name, type, labels and help text. `npm run docs` writes it between the
 * markers below; a unit test fails when the committed file differs.
 */

export const METRICS_BEGIN = '<!-- BEGIN GENERATED METRICS: `npm run docs` writes this section from src/ops/metrics.ts -->';
export const METRICS_END = '<!-- END GENERATED METRICS -->';

/** prom-client's default process and Node.js metrics: which ones exist depends on the platform. */
const DEFAULT_METRIC = /^tributary_(process|nodejs)_/;

interface Described {
  name: string;
  help: string;
  type: string;
  labelNames?: readonly string[];
}

export function renderMetricsReference(): string {
  const metrics = new Metrics({ version: 'reference' });
  const described = metrics.registry.getMetricsAsArray() as unknown as Described[];
  const own = described.filter((m) => !DEFAULT_METRIC.test(m.name)).sort((a, b) => a.name.localeCompare(b.name));
  const lines = ['| Metric | Type | Labels | Help |', '|---|---|---|---|'];
  for (const m of own) {
    const labels = m.labelNames && m.labelNames.length > 0 ? m.labelNames.join(', ') : '—';
    lines.push(`| \`${m.name}\` | ${m.type} | ${labels} | ${m.help.replace(/\|/g, '\\|')} |`);
  }
  lines.push(
    "| `tributary_process_*`, `tributary_nodejs_*` | various | — | prom-client's default process and Node.js metrics (CPU, memory, heap, event-loop lag, GC); which ones exist depends on the platform. |",
  );
  return lines.join('\n');
}

/** Replaces what lies between the markers; the rest of the page is written by hand. */
export function withMetricsReference(page: string, reference: string = renderMetricsReference()): string {
  const begin = page.indexOf(METRICS_BEGIN);
  const end = page.indexOf(METRICS_END);
  if (begin < 0 || end < begin) throw new Error(`the page has no generated metrics section (${METRICS_BEGIN} ... ${METRICS_END})`);
  return `${page.slice(0, begin + METRICS_BEGIN.length)}\n${reference}\n${page.slice(end)}`;
}
