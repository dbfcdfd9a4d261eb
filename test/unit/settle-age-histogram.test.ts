import { Histogram, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { SettleAgeHistogram } from '../../src/ops/settle-age-histogram.js';

const BUCKETS = [0.1, 0.5, 1, 2, 5, 10, 30, 60, 300, 900, 3600, 21600, 86400, 259200, 604800];

/** The exposition lines after # HELP / # TYPE, with the metric name made neutral. */
function lines(text: string, name: string): string[] {
  return text
    .split('\n')
    .filter((l) => l.startsWith(name))
    .map((l) => l.slice(name.length))
    .sort();
}

describe('SettleAgeHistogram', () => {
  it('renders exactly what prom-client renders for the same observations, bucket edges included', async () => {
    const now = 1_000_000_000_000;
    // Ages on and around bucket edges (le is inclusive), zero, beyond the last bucket, and a publish
    // time in the future (clock skew), which counts as age 0.
    const agesMs = [0, 1, 99, 100, 101, 500, 999, 1000, 1001, 4_999, 5_000, 60_000, 86_400_000, 604_800_000, 604_800_001, 9e9, -50];
    const ours = new Registry();
    const theirs = new Registry();
    const histogram = new SettleAgeHistogram('ours', 'h', BUCKETS);
    ours.registerMetric(histogram.asMetric());
    const reference = new Histogram({ name: 'theirs', help: 'h', labelNames: ['route', 'outcome'], buckets: BUCKETS, registers: [theirs] });

    histogram.observeBatch(
      'access',
      'acked',
      agesMs.slice(0, 9).map((a) => ({ publishTimeMs: now - a })),
      now,
    );
    histogram.observeBatch(
      'access',
      'acked',
      agesMs.slice(9).map((a) => ({ publishTimeMs: now - a })),
      now,
    );
    histogram.observeBatch('audit', 'dead-lettered', [{ publishTimeMs: now - 2_000 }], now);
    for (const a of agesMs) reference.observe({ route: 'access', outcome: 'acked' }, Math.max(0, a) / 1000);
    reference.observe({ route: 'audit', outcome: 'dead-lettered' }, 2);

    const ourLines = lines(await ours.metrics(), 'ours');
    expect(ourLines).toEqual(lines(await theirs.metrics(), 'theirs'));
    expect(ourLines).toContain('_count{route="access",outcome="acked"} 17');
    expect(ourLines).toContain('_bucket{le="0.1",route="access",outcome="acked"} 5');
    expect(ourLines).toContain('_bucket{le="604800",route="access",outcome="acked"} 15');
    expect(ourLines).toContain('_bucket{le="+Inf",route="audit",outcome="dead-lettered"} 1');
    expect((await ours.metrics()).split('\n').slice(0, 2)).toEqual(['# HELP ours h', '# TYPE ours histogram']);
  });

  it('is emptied by the registry reset, and refuses buckets out of order', async () => {
    const registry = new Registry();
    const histogram = new SettleAgeHistogram('age', 'h', [1, 2]);
    registry.registerMetric(histogram.asMetric());
    histogram.observeBatch('r', 'acked', [{ publishTimeMs: 0 }], 500);
    expect(lines(await registry.metrics(), 'age')).toHaveLength(5);
    registry.resetMetrics();
    expect(lines(await registry.metrics(), 'age')).toEqual([]);
    expect(() => new SettleAgeHistogram('bad', 'h', [2, 1])).toThrow(/increasing/);
  });
});
