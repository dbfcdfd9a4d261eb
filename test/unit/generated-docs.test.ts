import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { EXAMPLE_CONFIG, renderConfigurationReference } from '../../scripts/configuration-reference.js';
import { METRICS_BEGIN, METRICS_END, renderMetricsReference, withMetricsReference } from '../../scripts/metrics-reference.js';
import { parseConfig } from '../../src/config.js';

const STALE = 'is out of date: run `npm run docs` and commit the result';

function read(path: string): Promise<string> {
  return readFile(new URL(`../../${path}`, import.meta.url), 'utf8');
}

describe('generated references', () => {
  it('docs/configuration.md is what the config schema renders', async () => {
    expect(await read('docs/configuration.md'), `docs/configuration.md ${STALE}`).toBe(renderConfigurationReference());
  });

  it('the metrics section of docs/operations.md is what the metrics registry renders', async () => {
    const page = await read('docs/operations.md');
    expect(page, `docs/operations.md ${STALE}`).toBe(withMetricsReference(page));
  });

  it('the configuration reference lists every setting with its variable, and its example is a valid config', () => {
    const reference = renderConfigurationReference();
    expect(reference).toContain('| `routes.<name>.batch.maxRows` | integer, 1 to 50000 | `500` | `TRIBUTARY_ROUTES_<NAME>_BATCH_MAX_ROWS` |');
    expect(reference).toContain('`trace` \\| `debug`');
    expect(() => parseConfig(EXAMPLE_CONFIG, {})).not.toThrow();
  });

  it('the metrics reference names every metric with its labels; the hand-written rest of the page is kept', () => {
    const reference = renderMetricsReference();
    expect(reference).toContain('| `tributary_messages_settled_total` | counter | route, outcome, code |');
    expect(reference).toContain('| `tributary_message_age_at_settle_seconds` | histogram | route, outcome |');
    const page = `before\n${METRICS_BEGIN}\nstale\n${METRICS_END}\nafter\n`;
    expect(withMetricsReference(page, 'fresh')).toBe(`before\n${METRICS_BEGIN}\nfresh\n${METRICS_END}\nafter\n`);
    expect(() => withMetricsReference('no markers')).toThrow(/no generated metrics section/);
  });
});
