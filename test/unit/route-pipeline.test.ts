import { describe, expect, it } from 'vitest';
import { TributaryError } from '../../src/errors.js';
import { noopObserver } from '../../src/core/observer.js';
import type { DeadLetterPublisher, InsertOutcome, InsertRow, Logger, Sink } from '../../src/core/ports.js';
import { systemClock } from '../../src/core/ports.js';
import { RoutePipeline, type RoutePipelineOptions } from '../../src/core/route-pipeline.js';
import { Settler } from '../../src/core/settler.js';
import type { TableRef, TableSchema } from '../../src/core/table-schema.js';
import { TableValidators } from '../../src/core/table-validators.js';
import { trackedEnvelope, type TrackedEnvelope } from '../support/fake-envelopes.js';

const silent: Logger = { debug() {}, info() {}, warn() {}, error() {} };
const table: TableRef = { projectId: 'p', datasetId: 'd', tableId: 't' };
const schema: TableSchema = {
  fields: [
    { name: 'n', type: 'INTEGER', mode: 'REQUIRED' },
    { name: 'pad', type: 'STRING', mode: 'NULLABLE' },
  ],
};

type Answer = InsertOutcome | TributaryError | ((rows: InsertRow[]) => InsertOutcome | TributaryError);

/** A destination the test scripts request by request; records what it was sent. */
class ScriptedSink implements Sink {
  calls: InsertRow[][] = [];
  schemaCalls = 0;
  answers: Answer[] = [];
  schemaError: TributaryError | undefined;
  private waiters: Array<{ n: number; resolve: () => void }> = [];

  async insert(_table: TableRef, rows: InsertRow[]): Promise<InsertOutcome> {
    this.calls.push(rows);
    for (const w of this.waiters.filter((w) => this.calls.length >= w.n)) w.resolve();
    const next = this.answers.shift() ?? { failures: [] };
    const answer = typeof next === 'function' ? next(rows) : next;
    if (answer instanceof TributaryError) throw answer;
    return answer;
  }

  async getTableSchema(): Promise<TableSchema> {
    this.schemaCalls++;
    if (this.schemaError) throw this.schemaError;
    return schema;
  }

  waitForCalls(n: number): Promise<void> {
    if (this.calls.length >= n) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push({ n, resolve }));
  }
}

class RecordingDeadLetters implements DeadLetterPublisher {
  published: Array<{ id: string; code: string; message: string }> = [];
  async publish(envelope: { id: string }, error: TributaryError): Promise<void> {
    this.published.push({ id: envelope.id, code: error.code, message: error.message });
  }
}

function setup(overrides: Partial<RoutePipelineOptions> = {}) {
  const sink = new ScriptedSink();
  const deadLetters = new RecordingDeadLetters();
  const settler = new Settler(deadLetters, noopObserver, systemClock, silent);
  const options: RoutePipelineOptions = {
    name: 'access',
    table,
    batch: { maxRows: 10, maxBytes: 1_000_000, maxDelayMs: 60_000 },
    maxInFlightBatches: 2,
    unknownFields: 'dead-letter',
    retry: { maxAttempts: 4, initialDelayMs: 1, maxDelayMs: 5 },
    probeIntervalMs: 20,
    ...overrides,
  };
  const pipeline = new RoutePipeline(options, {
    sink,
    validators: new TableValidators(sink, 60_000, Date.now),
    settler,
    observer: noopObserver,
    clock: systemClock,
    logger: silent,
  });
  const submit = (n: number, row: (i: number) => Record<string, unknown> = (i) => ({ n: i })): TrackedEnvelope[] =>
    Array.from({ length: n }, (_, i) => {
      const envelope = trackedEnvelope();
      const json = row(i) as never;
      const text = JSON.stringify(json);
      pipeline.submit({ envelope, row: json, text, bytes: Buffer.byteLength(text), schemaKey: 'confluent:1' });
      return envelope;
    });
  return { sink, deadLetters, pipeline, submit };
}

describe('RoutePipeline batching', () => {
  it('flushes on maxRows', async () => {
    const { sink, pipeline, submit } = setup();
    const envelopes = submit(25);
    await sink.waitForCalls(2);
    expect(sink.calls.map((c) => c.length)).toEqual([10, 10]);
    await pipeline.drain();
    expect(sink.calls.map((c) => c.length)).toEqual([10, 10, 5]);
    expect(envelopes.every((e) => e.settledAs === 'ack' && e.settleCount === 1)).toBe(true);
  });

  it('flushes on maxBytes and never exceeds it', async () => {
    const { sink, pipeline, submit } = setup({ batch: { maxRows: 1000, maxBytes: 1024, maxDelayMs: 60_000 } });
    submit(30, (i) => ({ n: i, pad: 'x'.repeat(100) }));
    await pipeline.drain();
    for (const call of sink.calls) expect(Buffer.byteLength(JSON.stringify(call.map((r) => r.json)))).toBeLessThanOrEqual(1024 + call.length);
    expect(sink.calls.length).toBeGreaterThan(3);
    expect(sink.calls.flat()).toHaveLength(30);
  });

  it('flushes on age', async () => {
    const { sink, submit } = setup({ batch: { maxRows: 1000, maxBytes: 1_000_000, maxDelayMs: 30 } });
    const started = Date.now();
    submit(3);
    await sink.waitForCalls(1);
    expect(Date.now() - started).toBeGreaterThanOrEqual(25);
    expect(sink.calls[0]).toHaveLength(3);
  });

  it('keeps at most maxInFlightBatches requests open', async () => {
    const { sink, pipeline, submit } = setup({ maxInFlightBatches: 2 });
    let open = 0;
    let peak = 0;
    const release: Array<() => void> = [];
    sink.insert = async (_t, rows) => {
      sink.calls.push(rows);
      open++;
      peak = Math.max(peak, open);
      await new Promise<void>((resolve) => release.push(resolve));
      open--;
      return { failures: [] };
    };
    submit(50);
    await new Promise((r) => setImmediate(r));
    await new Promise((r) => setImmediate(r));
    expect(open).toBe(2);
    const draining = pipeline.drain();
    while (sink.calls.length < 5 || release.length > 0) {
      release.shift()?.();
      await new Promise((r) => setImmediate(r));
    }
    await draining;
    expect(peak).toBe(2);
  });
});

describe('RoutePipeline outcomes', () => {
  it('dead-letters only the invalid row and resends the stopped ones with the same insertIds, at once', async () => {
    const { sink, deadLetters, pipeline, submit } = setup({ retry: { maxAttempts: 1, initialDelayMs: 1, maxDelayMs: 1 } });
    sink.answers.push((rows) => ({
      failures: rows.map((_, index) => (index === 3 ? { index, reason: 'invalid', message: 'no such field: bogus.', location: 'bogus' } : { index, reason: 'stopped', message: '' })),
    }));
    const envelopes = submit(10);
    await pipeline.drain();
    expect(sink.calls).toHaveLength(2);
    expect(sink.calls[1]?.map((r) => r.insertId)).toEqual(sink.calls[0]?.filter((_, i) => i !== 3).map((r) => r.insertId));
    expect(deadLetters.published).toEqual([{ id: envelopes[3]?.id, code: 'BIGQUERY_ROW_INVALID', message: expect.stringContaining('field "bogus"') }]);
    expect(envelopes.filter((e) => e.settledAs === 'ack')).toHaveLength(10);
  });

  it('unknownFields: drop sends the rows without the fields the table lacks, in the row and in its JSON text', async () => {
    const { sink, deadLetters, pipeline, submit } = setup({ unknownFields: 'drop', batch: { maxRows: 3, maxBytes: 1_000_000, maxDelayMs: 60_000 } });
    const envelopes = submit(3, (i) => (i === 1 ? { n: i, pad: 'p', extra: 'not in the table' } : { n: i }));
    await sink.waitForCalls(1);
    await pipeline.drain();
    const sent = sink.calls[0] as InsertRow[];
    expect(sent.map((r) => r.json)).toEqual([{ n: 0 }, { n: 1, pad: 'p' }, { n: 2 }]);
    expect(sent.map((r) => JSON.parse(r.text as string) as unknown)).toEqual(sent.map((r) => r.json));
    expect(deadLetters.published).toEqual([]);
    expect(envelopes.map((e) => e.settledAs)).toEqual(['ack', 'ack', 'ack']);
  });

  it('pre-validation dead-letters a row BigQuery would reject before any request', async () => {
    const { sink, deadLetters, pipeline, submit } = setup();
    const envelopes = submit(3, (i) => (i === 1 ? { n: null } : { n: i }));
    await pipeline.drain();
    expect(sink.calls).toHaveLength(1);
    expect(sink.calls[0]).toHaveLength(2);
    expect(deadLetters.published[0]).toMatchObject({ id: envelopes[1]?.id, code: 'ROW_INVALID', message: expect.stringContaining('"n"') });
  });

  it('retries transient request errors with the same insertIds, then succeeds', async () => {
    const { sink, deadLetters, pipeline, submit } = setup();
    sink.answers.push(new TributaryError('BIGQUERY_UNAVAILABLE', '503'), new TributaryError('BIGQUERY_RATE_LIMITED', '429'));
    const envelopes = submit(5);
    await pipeline.drain();
    expect(sink.calls).toHaveLength(3);
    const ids = sink.calls.map((c) => c.map((r) => r.insertId).join());
    expect(new Set(ids).size).toBe(1);
    expect(deadLetters.published).toEqual([]);
    expect(envelopes.every((e) => e.settledAs === 'ack')).toBe(true);
  });

  it('retries only the rows with retryable per-row errors', async () => {
    const { sink, pipeline, submit } = setup();
    sink.answers.push({ failures: [{ index: 1, reason: 'backendError', message: '' }, { index: 4, reason: 'timeout', message: '' }] });
    submit(5);
    await pipeline.drain();
    expect(sink.calls.map((c) => c.map((r) => r.json.n))).toEqual([[0, 1, 2, 3, 4], [1, 4]]);
  });

  it('nacks after maxAttempts of transient errors, dead-letters nothing', async () => {
    const { sink, deadLetters, pipeline, submit } = setup();
    sink.answers.push(...Array.from({ length: 10 }, () => new TributaryError('BIGQUERY_UNAVAILABLE', '503')));
    const envelopes = submit(3);
    await pipeline.drain();
    expect(sink.calls).toHaveLength(4);
    expect(deadLetters.published).toEqual([]);
    expect(envelopes.every((e) => e.settledAs === 'nack' && e.settleCount === 1)).toBe(true);
  });

  it('pauses on a destination error, probes without hot-looping, and resumes by itself', async () => {
    const { sink, deadLetters, pipeline, submit } = setup({ probeIntervalMs: 40, batch: { maxRows: 10, maxBytes: 1_000_000, maxDelayMs: 5 } });
    sink.answers.push(new TributaryError('TABLE_NOT_FOUND', 'gone'));
    const first = submit(3);
    await sink.waitForCalls(1);
    await new Promise((r) => setImmediate(r));
    expect(pipeline.status().state).toBe('paused');
    expect(pipeline.status().reason?.code).toBe('TABLE_NOT_FOUND');
    // while the table stays broken, probes fail and the held rows go back to Pub/Sub
    sink.schemaError = new TributaryError('TABLE_NOT_FOUND', 'gone');
    const before = sink.schemaCalls;
    await new Promise((r) => setTimeout(r, 150));
    const probes = sink.schemaCalls - before;
    expect(probes).toBeGreaterThanOrEqual(1);
    expect(probes).toBeLessThanOrEqual(4);
    expect(sink.calls).toHaveLength(1);
    expect(first.every((e) => e.settledAs === 'nack')).toBe(true);
    // the table comes back
    sink.schemaError = undefined;
    const second = submit(2);
    await sink.waitForCalls(2);
    await pipeline.drain();
    expect(second.every((e) => e.settledAs === 'ack')).toBe(true);
    expect(deadLetters.published).toEqual([]);
  });

  it('a paused route nacks beyond its hold limit instead of filling flow control', async () => {
    const { sink, pipeline, submit } = setup({ batch: { maxRows: 2, maxBytes: 1_000_000, maxDelayMs: 60_000 }, maxInFlightBatches: 1, probeIntervalMs: 60_000 });
    sink.answers.push(new TributaryError('ACCESS_DENIED', 'denied'));
    submit(2);
    await sink.waitForCalls(1);
    await new Promise((r) => setImmediate(r));
    const later = submit(5);
    expect(later.filter((e) => e.settledAs === 'nack').length).toBe(5);
    await pipeline.drain();
  });

  it('halves its in-flight limit when throttled, paces at one, and climbs back on success', async () => {
    const { sink, pipeline, submit } = setup({ maxInFlightBatches: 8, batch: { maxRows: 1, maxBytes: 1_000_000, maxDelayMs: 60_000 }, retry: { maxAttempts: 6, initialDelayMs: 1, maxDelayMs: 2 } });
    sink.answers.push(...Array.from({ length: 5 }, () => new TributaryError('BIGQUERY_RATE_LIMITED', '403 rateLimitExceeded')));
    const [envelope] = submit(1);
    await pipeline.drain();
    expect(envelope?.settledAs).toBe('ack');
    const throttled = pipeline.status();
    // 8 -> 4 -> 2 -> 1, then two throttles at one request: pacing 20 ms, 40 ms (25 requests/s);
    // one success adds 0.5/25 requests/s: the gap shrinks a little, not back to unpaced.
    expect(throttled.concurrencyLimit).toBe(1);
    expect(throttled.pacingMs).toBeGreaterThan(39.9);
    expect(throttled.pacingMs).toBeLessThan(40);
  });
});
