import { describe, expect, it } from 'vitest';
import { TributaryError } from '../../src/errors.js';
import { noopObserver } from '../../src/core/observer.js';
import type { DeadLetterPublisher, Logger } from '../../src/core/ports.js';
import type { RoutePipelineOptions } from '../../src/core/route/route-options.js';
import { RoutePipeline } from '../../src/core/route/route-pipeline.js';
import { WindowShare } from '../../src/core/route/window-share.js';
import { Settler } from '../../src/core/settler.js';
import type { RowFailure } from '../../src/core/sink.js';
import type { Row, TableRef, TableSchema } from '../../src/core/table-schema.js';
import { TableValidators } from '../../src/core/table-validators.js';
import { rowFailures } from '../../src/adapters/bigquery-sink.js';
import { trackedEnvelope, type TrackedEnvelope } from '../support/fake-envelopes.js';
import { ManualClock } from '../support/manual-clock.js';
import { ScriptedSink } from '../support/scripted-sink.js';

const silent: Logger = { debug() {}, info() {}, warn() {}, error() {} };
const table: TableRef = { projectId: 'p', datasetId: 'd', tableId: 't' };
const schema: TableSchema = {
  fields: [
    { name: 'n', type: 'INTEGER', mode: 'REQUIRED' },
    { name: 'pad', type: 'STRING', mode: 'NULLABLE' },
  ],
};

class RecordingDeadLetters implements DeadLetterPublisher {
  published: Array<{ id: string; code: string; message: string }> = [];
  async publish(envelope: { id: string }, error: TributaryError): Promise<void> {
    this.published.push({ id: envelope.id, code: error.code, message: error.message });
  }
}

/** insertAll's answer, as the insertAll sink turns it into the neutral outcome. */
function insertAllAnswer(
  entries: Array<{ index: number; errors: Array<{ reason: string; message?: string; location?: string }> }>,
  rows: number,
): { failures: RowFailure[] } {
  return { failures: rowFailures(entries, rows, table) };
}

function setup(overrides: Partial<RoutePipelineOptions> = {}) {
  const clock = new ManualClock();
  const sink = new ScriptedSink(schema);
  const deadLetters = new RecordingDeadLetters();
  const settler = new Settler(deadLetters, noopObserver, clock, silent);
  const options: RoutePipelineOptions = {
    name: 'access',
    table,
    batch: { maxRows: 10, maxBytes: 1_000_000, maxDelayMs: 60_000 },
    maxInFlightBatches: 2,
    unknownFields: 'dead-letter',
    retry: { maxAttempts: 4, initialDelayMs: 100, maxDelayMs: 1000 },
    probeIntervalMs: 20_000,
    maxUnsettledRows: 1000,
    ...overrides,
  };
  const pipeline = new RoutePipeline(options, {
    sink,
    validators: new TableValidators(sink, 600_000, clock.now),
    settler,
    observer: noopObserver,
    clock,
    logger: silent,
    random: () => 0.5,
  });
  const submit = (n: number, row: (i: number) => Row = (i) => ({ n: i })): TrackedEnvelope[] =>
    Array.from({ length: n }, (_, i) => {
      const envelope = trackedEnvelope();
      pipeline.submit({ envelope, prepared: pipeline.prepare(envelope.id, row(i)), schemaKey: 'confluent:1' });
      return envelope;
    });
  return { clock, sink, deadLetters, pipeline, submit };
}

describe('RoutePipeline batching', () => {
  it('flushes on maxRows', async () => {
    const { sink, pipeline, submit, clock } = setup();
    const envelopes = submit(25);
    await clock.advance(0);
    expect(sink.calls.map((c) => c.length)).toEqual([10, 10]);
    await pipeline.drain();
    expect(sink.calls.map((c) => c.length)).toEqual([10, 10, 5]);
    expect(envelopes.every((e) => e.settledAs === 'ack' && e.settleCount === 1)).toBe(true);
  });

  it('flushes on maxBytes and never exceeds it, envelope included', async () => {
    const { sink, pipeline, submit } = setup({ batch: { maxRows: 1000, maxBytes: 1024, maxDelayMs: 60_000 } });
    submit(30, (i) => ({ n: i, pad: 'x'.repeat(100) }));
    await pipeline.drain();
    for (const call of sink.calls) expect(call.reduce((sum, r) => sum + r.bytes, 0)).toBeLessThanOrEqual(1024);
    expect(sink.calls.length).toBeGreaterThan(3);
    expect(sink.calls.flat()).toHaveLength(30);
  });

  it('flushes on age, not before', async () => {
    const { sink, submit, clock } = setup({ batch: { maxRows: 1000, maxBytes: 1_000_000, maxDelayMs: 30 } });
    submit(3);
    await clock.advance(29);
    expect(sink.calls).toHaveLength(0);
    await clock.advance(1);
    expect(sink.calls.map((c) => c.length)).toEqual([3]);
  });

  it('keeps at most maxInFlightBatches requests open', async () => {
    const { sink, pipeline, submit, clock } = setup({ maxInFlightBatches: 2 });
    sink.hold = true;
    submit(50);
    await clock.advance(0);
    expect(sink.open).toBe(2);
    const draining = pipeline.drain();
    while (sink.calls.length < 5 || sink.heldWrites > 0) {
      sink.release();
      await clock.advance(0);
    }
    await draining;
    expect(sink.peakOpen).toBe(2);
  });
});

describe('RoutePipeline outcomes', () => {
  it('dead-letters only the invalid row and resends the stopped ones with the same ids, at once', async () => {
    const { sink, deadLetters, pipeline, submit } = setup({ retry: { maxAttempts: 1, initialDelayMs: 1, maxDelayMs: 1 } });
    sink.answers.push((rows) =>
      insertAllAnswer(
        rows.map((_, index) =>
          index === 3
            ? { index, errors: [{ reason: 'invalid', message: 'no such field: bogus.', location: 'bogus' }] }
            : { index, errors: [{ reason: 'stopped' }] },
        ),
        rows.length,
      ),
    );
    const envelopes = submit(10);
    await pipeline.drain();
    expect(sink.calls).toHaveLength(2);
    expect(sink.calls[1]?.map((r) => r.id)).toEqual(sink.calls[0]?.filter((_, i) => i !== 3).map((r) => r.id));
    expect(deadLetters.published).toEqual([{ id: envelopes[3]?.id, code: 'BIGQUERY_ROW_INVALID', message: expect.stringContaining('field "bogus"') }]);
    expect(envelopes.filter((e) => e.settledAs === 'ack')).toHaveLength(10);
  });

  it('a stopped-only answer is retried with backoff and counted, never resent in a loop', async () => {
    const { sink, pipeline, submit, clock } = setup();
    sink.answers.push(
      ...Array.from(
        { length: 100 },
        () => (rows: readonly unknown[]) =>
          insertAllAnswer(
            rows.map((_, index) => ({ index, errors: [{ reason: 'stopped' }] })),
            rows.length,
          ),
      ),
    );
    const envelopes = submit(3);
    const drained = pipeline.drain();
    await clock.runAll();
    await drained;
    expect(sink.calls).toHaveLength(4);
    expect(envelopes.every((e) => e.settledAs === 'nack')).toBe(true);
  });

  it('an answer naming no row of the request acks nothing on it', async () => {
    const { sink, pipeline, submit, clock } = setup({ retry: { maxAttempts: 2, initialDelayMs: 1, maxDelayMs: 1 } });
    sink.answers.push(
      { failures: [{ index: -1, kind: 'retry', code: 'BIGQUERY_ROW_RETRYABLE' }] },
      { failures: [{ index: 7, kind: 'retry', code: 'BIGQUERY_ROW_RETRYABLE' }] },
    );
    const envelopes = submit(3);
    const drained = pipeline.drain();
    await clock.runAll();
    await drained;
    expect(sink.calls).toHaveLength(2);
    expect(envelopes.every((e) => e.settledAs === 'nack')).toBe(true);
  });

  it('unknownFields: drop sends the rows without the fields the table lacks, in the row and in what is sent', async () => {
    const { sink, deadLetters, pipeline, submit } = setup({ unknownFields: 'drop', batch: { maxRows: 3, maxBytes: 1_000_000, maxDelayMs: 60_000 } });
    const envelopes = submit(3, (i): Row => (i === 1 ? { n: i, pad: 'p', extra: 'not in the table' } : { n: i }));
    await sink.waitForCalls(1);
    await pipeline.drain();
    const sent = sink.calls[0] ?? [];
    expect(sent.map((r) => r.row)).toEqual([{ n: 0 }, { n: 1, pad: 'p' }, { n: 2 }]);
    expect(sent.map((r) => JSON.parse(r.encoded as string) as unknown)).toEqual(sent.map((r) => r.row));
    expect(deadLetters.published).toEqual([]);
    expect(envelopes.map((e) => e.settledAs)).toEqual(['ack', 'ack', 'ack']);
  });

  it('pre-validation dead-letters a row the table would reject before any request', async () => {
    const { sink, deadLetters, pipeline, submit } = setup();
    const envelopes = submit(3, (i) => (i === 1 ? { n: null } : { n: i }));
    await pipeline.drain();
    expect(sink.calls).toHaveLength(1);
    expect(sink.calls[0]).toHaveLength(2);
    expect(deadLetters.published[0]).toMatchObject({ id: envelopes[1]?.id, code: 'ROW_INVALID', message: expect.stringContaining('"n"') });
  });

  it('retries transient request errors with the same ids after a backoff, then succeeds', async () => {
    const { sink, deadLetters, pipeline, submit, clock } = setup();
    sink.answers.push(new TributaryError('BIGQUERY_UNAVAILABLE', '503'), new TributaryError('BIGQUERY_UNAVAILABLE', '503'));
    const envelopes = submit(5);
    const drained = pipeline.drain();
    await clock.advance(0);
    expect(sink.calls).toHaveLength(1);
    // full jitter at 0.5: 50 ms after the first failure, 100 ms after the second
    await clock.advance(49);
    expect(sink.calls).toHaveLength(1);
    await clock.advance(1);
    expect(sink.calls).toHaveLength(2);
    await clock.advance(100);
    await drained;
    expect(sink.calls).toHaveLength(3);
    expect(new Set(sink.calls.map((c) => c.map((r) => r.id).join())).size).toBe(1);
    expect(deadLetters.published).toEqual([]);
    expect(envelopes.every((e) => e.settledAs === 'ack')).toBe(true);
  });

  it('retries only the rows with retryable per-row errors', async () => {
    const { sink, pipeline, submit, clock } = setup();
    sink.answers.push((rows) =>
      insertAllAnswer(
        [
          { index: 1, errors: [{ reason: 'backendError' }] },
          { index: 4, errors: [{ reason: 'timeout' }] },
        ],
        rows.length,
      ),
    );
    submit(5);
    const drained = pipeline.drain();
    await clock.runAll();
    await drained;
    expect(sink.calls.map((c) => c.map((r) => r.row.n))).toEqual([
      [0, 1, 2, 3, 4],
      [1, 4],
    ]);
  });

  it('nacks after maxAttempts of transient errors, dead-letters nothing', async () => {
    const { sink, deadLetters, pipeline, submit, clock } = setup();
    sink.answers.push(...Array.from({ length: 10 }, () => new TributaryError('BIGQUERY_UNAVAILABLE', '503')));
    const envelopes = submit(3);
    const drained = pipeline.drain();
    await clock.runAll();
    await drained;
    expect(sink.calls).toHaveLength(4);
    expect(deadLetters.published).toEqual([]);
    expect(envelopes.every((e) => e.settledAs === 'nack' && e.settleCount === 1)).toBe(true);
  });

  it('splits a batch the destination finds too large, and dead-letters a row too large alone', async () => {
    const { sink, deadLetters, pipeline, submit } = setup();
    sink.answers.push((rows) => (rows.length > 2 ? new TributaryError('REQUEST_TOO_LARGE', '413') : {}));
    sink.answers.push((rows) => (rows.length > 2 ? new TributaryError('REQUEST_TOO_LARGE', '413') : {}));
    const envelopes = submit(5);
    await pipeline.drain();
    expect(sink.calls.map((c) => c.length)).toEqual([5, 3, 2, 1, 2]);
    expect(envelopes.every((e) => e.settledAs === 'ack')).toBe(true);
    const lone = setup();
    lone.sink.answers.push(new TributaryError('REQUEST_TOO_LARGE', '413'));
    const [one] = lone.submit(1);
    await lone.pipeline.drain();
    expect(lone.deadLetters.published).toEqual([{ id: one?.id, code: 'ROW_TOO_LARGE', message: expect.stringContaining('413') }]);
    expect(deadLetters.published).toEqual([]);
  });

  it('pauses on a destination error, probes with real writes on a backoff, gives held rows back, and resumes', async () => {
    const { sink, deadLetters, pipeline, submit, clock } = setup({ probeIntervalMs: 1_000, batch: { maxRows: 10, maxBytes: 1_000_000, maxDelayMs: 5 } });
    sink.answers.push(new TributaryError('TABLE_NOT_FOUND', 'gone'));
    const first = submit(3);
    await clock.advance(5);
    expect(pipeline.status().state).toBe('paused');
    expect(pipeline.status().reason?.code).toBe('TABLE_NOT_FOUND');
    expect(first.every((e) => e.settledAs === undefined)).toBe(true);
    // the first probe, 100 ms later, is a write of the held rows; it fails and they go back
    sink.answers.push(new TributaryError('TABLE_NOT_FOUND', 'gone'));
    await clock.advance(99);
    expect(sink.calls).toHaveLength(1);
    await clock.advance(1);
    expect(sink.calls).toHaveLength(2);
    expect(first.every((e) => e.settledAs === 'nack')).toBe(true);
    // backoff: the next probe is 200 ms later, with nothing held a read of the table
    await clock.advance(199);
    const reads = sink.schemaCalls;
    sink.schemaError = new TributaryError('TABLE_NOT_FOUND', 'gone');
    await clock.advance(1);
    expect(sink.schemaCalls).toBe(reads + 1);
    expect(pipeline.status().state).toBe('paused');
    // the table comes back: rows held meanwhile are the next probe's write, and the route resumes
    sink.schemaError = undefined;
    const second = submit(2);
    await clock.advance(400);
    expect(pipeline.status().state).toBe('running');
    await pipeline.drain();
    expect(second.every((e) => e.settledAs === 'ack')).toBe(true);
    expect(deadLetters.published).toEqual([]);
  });

  it('a destination that reads but refuses writes is probed ever more slowly, not every few hundred ms', async () => {
    const { sink, pipeline, submit, clock } = setup({ probeIntervalMs: 30_000, batch: { maxRows: 10, maxBytes: 1_000_000, maxDelayMs: 5 } });
    sink.answers.push(...Array.from({ length: 1000 }, () => new TributaryError('ACCESS_DENIED', 'bigquery.tables.updateData denied')));
    // messages keep arriving, as redeliveries do
    for (let second = 0; second < 10; second++) {
      submit(3);
      await clock.advance(1000);
    }
    // 10 s: the first write, then probes at 0.1, 0.3, 0.7, 1.5, 3.1, 6.3 s
    expect(sink.calls.length).toBeLessThanOrEqual(8);
    expect(pipeline.status().state).toBe('paused');
    const drained = pipeline.drain();
    await clock.runAll();
    await drained;
  });

  it('a paused route holds only its share and hands the rest back for its next probe, not at once', async () => {
    const { sink, pipeline, submit, clock } = setup({
      batch: { maxRows: 2, maxBytes: 1_000_000, maxDelayMs: 60_000 },
      maxInFlightBatches: 1,
      probeIntervalMs: 60_000,
      maxUnsettledRows: 4,
    });
    sink.answers.push(new TributaryError('ACCESS_DENIED', 'denied'));
    submit(2);
    await clock.advance(0);
    const later = submit(5);
    expect(later.map((e) => e.settledAs)).toEqual([undefined, undefined, 'nack', 'nack', 'nack']);
    expect(later.slice(2).every((e) => e.redeliverAfterMs !== undefined && e.redeliverAfterMs >= 1000)).toBe(true);
    expect(pipeline.unsettledRows).toBe(4);
    await pipeline.drain();
  });

  it('a slow route that is running also stops at its share: rows in flight count, and what comes back waits about one request', async () => {
    const { sink, pipeline, submit, clock } = setup({
      batch: { maxRows: 5, maxBytes: 1_000_000, maxDelayMs: 60_000 },
      maxInFlightBatches: 2,
      maxUnsettledRows: 10,
    });
    sink.hold = true;
    const first = submit(10);
    await clock.advance(0);
    expect(sink.open).toBe(2);
    const over = submit(3);
    expect(over.every((e) => e.settledAs === 'nack')).toBe(true);
    expect(first.every((e) => e.settledAs === undefined)).toBe(true);
    while (sink.release()) await clock.advance(0);
    const drained = pipeline.drain();
    while (sink.release()) await clock.advance(0);
    await drained;
    expect(first.every((e) => e.settledAs === 'ack')).toBe(true);
  });

  it('a destination error while draining nacks at once instead of resending', async () => {
    const { sink, pipeline, submit, clock } = setup();
    sink.answers.push(...Array.from({ length: 100 }, () => new TributaryError('TABLE_NOT_FOUND', 'gone')));
    const envelopes = submit(3);
    await pipeline.drain();
    await clock.advance(0);
    expect(sink.calls).toHaveLength(1);
    expect(envelopes.every((e) => e.settledAs === 'nack')).toBe(true);
  });

  it('halves its in-flight limit when throttled, paces at one, and climbs back on success', async () => {
    const { sink, pipeline, submit, clock } = setup({
      maxInFlightBatches: 8,
      batch: { maxRows: 1, maxBytes: 1_000_000, maxDelayMs: 60_000 },
      retry: { maxAttempts: 6, initialDelayMs: 1, maxDelayMs: 2 },
    });
    sink.answers.push(...Array.from({ length: 5 }, () => new TributaryError('BIGQUERY_RATE_LIMITED', '403 rateLimitExceeded')));
    const [envelope] = submit(1);
    const drained = pipeline.drain();
    for (let i = 0; i < 20 && envelope?.settledAs === undefined; i++) await clock.advance(50);
    await drained;
    expect(envelope?.settledAs).toBe('ack');
    const throttled = pipeline.status();
    // 8 -> 4 -> 2 -> 1, then two throttles at one request: pacing 20 ms, 40 ms (25 requests/s);
    // one success adds 0.5/25 requests/s: the gap shrinks a little, not back to unpaced.
    expect(throttled.concurrencyLimit).toBe(1);
    expect(throttled.pacingMs).toBeGreaterThan(39.9);
    expect(throttled.pacingMs).toBeLessThan(40);
  });
});

describe('RoutePipeline on a shared window', () => {
  it('borrows beyond its share only once it has answered quickly, and stops when a request stays open', async () => {
    const window = new WindowShare(40);
    const { sink, pipeline, submit, clock } = setup({
      batch: { maxRows: 5, maxBytes: 1_000_000, maxDelayMs: 60_000 },
      maxInFlightBatches: 8,
      maxUnsettledRows: 10,
      window,
    });
    const other = { unsettledRows: 15, share: 20, mayBorrow: false };
    window.join(other);
    sink.hold = true;
    // before any answer its speed is unknown: its share and no more
    const first = submit(12);
    expect(first.filter((e) => e.settledAs === 'nack')).toHaveLength(2);
    await clock.advance(20);
    while (sink.release()) await clock.advance(0);
    expect(pipeline.unsettledRows).toBe(0);
    // answered in 20 ms: it may take what the other route leaves, 40 - 15
    const second = submit(25);
    expect(second.filter((e) => e.settledAs === 'nack')).toHaveLength(0);
    expect(submit(1)[0]?.settledAs).toBe('nack');
    // a request open for a second makes it slow: back to its share until it answers
    await clock.advance(1000);
    while (sink.release()) await clock.advance(0);
    submit(10);
    await clock.advance(1000);
    expect(pipeline.mayBorrow).toBe(false);
    while (sink.release()) await clock.advance(0);
    const drained = pipeline.drain();
    while (sink.release()) await clock.advance(0);
    await drained;
  });
});
