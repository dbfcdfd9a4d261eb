import type { Metric } from 'prom-client';

/** Anything with a publish time: the messages of a settled batch. */
export interface Published {
  readonly publishTimeMs: number;
}

interface SampleValue {
  metricName: string;
  labels: Record<string, string | number>;
  value: number;
}

/** One label set: cumulative counts are computed at scrape time, observations only bump a slot. */
class Series {
  /** counts[i]: observations in (bounds[i-1], bounds[i]]; the last slot is (last bound, +Inf). */
  readonly counts: Float64Array;
  sumSeconds = 0;
  count = 0;

  constructor(
    readonly labels: Readonly<Record<string, string>>,
    private readonly boundsMs: Float64Array,
  ) {
    this.counts = new Float64Array(boundsMs.length + 1);
  }

  observe(ageMs: number): void {
    const bounds = this.boundsMs;
    let i = 0;
    // Ages are mostly in the first few buckets: a forward scan beats a binary search here.
    while (i < bounds.length && ageMs > bounds[i]!) i++;
    this.counts[i]!++;
    this.sumSeconds += ageMs / 1000;
    this.count++;
  }
}

/**
 * A Prometheus histogram of message age at settle, observed for every message. prom-client's
 * Histogram hashes its labels on every observe(); here a batch looks its series up once and each
 * message costs a few comparisons, so the figure is exact (one observation per message) at the
 * price the hot path can pay. Exposed through the registry like any prom-client metric.
 */
export class SettleAgeHistogram {
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  /** As prom-client's metrics expose them: the metrics reference reads it. */
  readonly labelNames: readonly string[] = ['route', 'outcome'];
  private readonly boundsMs: Float64Array;
  private readonly series = new Map<string, Series>();

  constructor(
    readonly name: string,
    readonly help: string,
    private readonly bucketsSeconds: readonly number[],
  ) {
    const sorted = [...bucketsSeconds].sort((a, b) => a - b);
    if (sorted.some((b, i) => b !== bucketsSeconds[i])) throw new Error(`${name}: buckets must be in increasing order`);
    this.boundsMs = Float64Array.from(bucketsSeconds, (s) => s * 1000);
  }

  /** One call per settled batch: the age of every message in it, measured at `nowMs`. */
  observeBatch(route: string, outcome: string, messages: readonly Published[], nowMs: number): void {
    const key = `${route}\u0000${outcome}`;
    let series = this.series.get(key);
    if (series === undefined) {
      series = new Series({ route, outcome }, this.boundsMs);
      this.series.set(key, series);
    }
    for (let i = 0; i < messages.length; i++) series.observe(Math.max(0, nowMs - messages[i]!.publishTimeMs));
  }

  /** What prom-client's registry reads when it renders or collects metrics. */
  async get(): Promise<{ name: string; help: string; type: 'histogram'; aggregator: 'sum'; values: SampleValue[] }> {
    const values: SampleValue[] = [];
    for (const series of this.series.values()) {
      let cumulative = 0;
      for (let i = 0; i <= this.bucketsSeconds.length; i++) {
        cumulative += series.counts[i]!;
        const le = i < this.bucketsSeconds.length ? this.bucketsSeconds[i]! : '+Inf';
        values.push({ metricName: `${this.name}_bucket`, labels: { le, ...series.labels }, value: cumulative });
      }
      values.push({ metricName: `${this.name}_sum`, labels: { ...series.labels }, value: series.sumSeconds });
      values.push({ metricName: `${this.name}_count`, labels: { ...series.labels }, value: series.count });
    }
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }

  reset(): void {
    this.series.clear();
  }

  /**
   * For Registry.registerMetric, typed for prom-client's four classes; the registry only reads
   * name, help, type, get() and reset(), which this class has.
   */
  asMetric(): Metric {
    return this as unknown as Metric;
  }
}
