import { describe, expect, it } from 'vitest';
import { rowFailures } from '../../src/adapters/bigquery-sink.js';
import type { ErrorCode } from '../../src/errors.js';
import { TributaryError } from '../../src/errors.js';
import type { PipelineObserver, SettleOutcome, TableChangeWaitKind } from '../../src/core/observer.js';
import type { DeadLetterPublisher, Logger } from '../../src/core/ports.js';
import { PROPAGATION_BACKOFF } from '../../src/core/route/propagation-wait.js';
import type { RoutePipelineOptions } from '../../src/core/route/route-options.js';
import { RoutePipeline } from '../../src/core/route/route-pipeline.js';
import { diffTableSchema, hasChanges, incompatibilityError } from '../../src/core/schema-diff.js';
import { PROPAGATION_WAIT_BOUND_MS } from '../../src/core/schema-propagation.js';
import { Settler } from '../../src/core/settler.js';
import type { TableEvolution, TableEvolver } from '../../src/core/table-evolver.js';
import type { TableLayout } from '../../src/core/table-layout.js';
import type { Row, TableField, TableRef, TableSchema } from '../../src/core/table-schema.js';
import { TableValidators } from '../../src/core/table-validators.js';
import { trackedEnvelope, type TrackedEnvelope } from '../support/fake-envelopes.js';
import { ManualClock } from '../support/manual-clock.js';
import { ScriptedSink } from '../support/scripted-sink.js';

const table: TableRef = { projectId: 'p', datasetId: 'd', tableId: 'access' };

const rev1: TableField[] = [
  { name: 'n', type: 'INTEGER', mode: 'REQUIRED' },
  { name: 'path', type: 'STRING', mode: 'NULLABLE' },
];
/** rev1 plus a nullable string, an array and a nested record. */
const rev2: TableField[] = [
  ...rev1,
  { name: 'region', type: 'STRING', mode: 'NULLABLE' },
  { name: 'tags', type: 'STRING', mode: 'REPEATED' },
  { name: 'geo', type: 'RECORD', mode: 'NULLABLE', fields: [{ name: 'city', type: 'STRING', mode: 'NULLABLE' }] },
];
/** `n` changes type. */
const rev3: TableField[] = [
  { name: 'n', type: 'STRING', mode: 'REQUIRED' },
  { name: 'path', type: 'STRING', mode: 'NULLABLE' },
];

class RecordingDeadLetters implements DeadLetterPublisher {
  published: Array<{ id: string; code: string; message: string }> = [];
  async publish(envelope: { id: string }, error: TributaryError): Promise<void> {
    this.published.push({ id: envelope.id, code: error.code, message: error.message });
  }
}

class RecordingObserver implements PipelineObserver {
  waits: Array<{ kind: TableChangeWaitKind; seconds: number; rows: number }> = [];
  retries: ErrorCode[] = [];
  nacks: Array<ErrorCode | undefined> = [];
  received(): void {}
  settled(_route: string, outcome: SettleOutcome, code: ErrorCode | undefined, messages: readonly unknown[]): void {
    if (outcome === 'nacked') for (let i = 0; i < messages.length; i++) this.nacks.push(code);
  }
  rowsInserted(): void {}
  insertRequest(): void {}
  batchFlushed(): void {}
  retried(_route: string, code: ErrorCode): void {
    this.retries.push(code);
  }
  fieldsDropped(): void {}
  routeState(): void {}
  tableChangeWait(_route: string, kind: TableChangeWaitKind, seconds: number, rows: number): void {
    this.waits.push({ kind, seconds, rows });
  }
}

/**
 * A table evolver over the scripted sink's schema object, with the same diff as the real ones:
 * once per (table, schema id), refusing incompatible changes, and able to be held by the test.
 */
class FakeEvolver implements TableEvolver {
  evolveCalls = 0;
  patches = 0;
  creates: Array<{ fields: readonly TableField[]; layout: TableLayout | undefined }> = [];
  gate: Promise<void> | undefined;
  private readonly memo = new Map<string, Promise<TableEvolution>>();

  constructor(
    private readonly sink: ScriptedSink,
    private readonly schema: TableSchema,
  ) {}

  evolve(_table: TableRef, schemaId: string, desired: readonly TableField[]): Promise<TableEvolution> {
    this.evolveCalls++;
    let result = this.memo.get(schemaId);
    if (result === undefined) {
      result = this.apply(desired);
      this.memo.set(schemaId, result);
    }
    return result;
  }

  private async apply(desired: readonly TableField[]): Promise<TableEvolution> {
    await this.gate;
    const diff = diffTableSchema(desired, this.schema);
    if (diff.incompatibilities.length > 0) throw incompatibilityError(table, diff);
    if (!hasChanges(diff)) return { changed: false, diff, schema: this.schema };
    this.patches++;
    this.schema.fields = diff.patched.fields;
    return { changed: true, diff, schema: this.schema };
  }

  async createTable(_table: TableRef, fields: readonly TableField[], layout?: TableLayout): Promise<'created' | 'exists'> {
    await this.gate;
    this.creates.push({ fields, layout });
    if (this.sink.schemaError === undefined) return 'exists';
    this.sink.schemaError = undefined;
    this.schema.fields = structuredClone([...fields]);
    return 'created';
  }
}

const silent: Logger = { debug() {}, info() {}, warn() {}, error() {} };

function setup(overrides: Partial<RoutePipelineOptions> = {}, initial: TableField[] = rev1) {
  const clock = new ManualClock();
  const schema: TableSchema = { fields: structuredClone(initial) };
  const sink = new ScriptedSink(schema);
  const evolver = new FakeEvolver(sink, schema);
  const deadLetters = new RecordingDeadLetters();
  const observer = new RecordingObserver();
  const settler = new Settler(deadLetters, observer, clock, silent);
  const logged: Array<{ fields: object; message: string }> = [];
  const logger: Logger = {
    ...silent,
    info: (fields, message) => logged.push({ fields, message }),
    error: (fields, message) => logged.push({ fields, message }),
  };
  const options: RoutePipelineOptions = {
    name: 'access',
    table,
    batch: { maxRows: 10, maxBytes: 1_000_000, maxDelayMs: 5 },
    maxInFlightBatches: 2,
    unknownFields: 'dead-letter',
    retry: { maxAttempts: 3, initialDelayMs: 100, maxDelayMs: 1000 },
    probeIntervalMs: 20_000,
    maxUnsettledRows: 1000,
    schemaEvolution: 'add-columns',
    ...overrides,
  };
  const pipeline = new RoutePipeline(options, {
    sink,
    validators: new TableValidators(sink, 600_000, clock.now),
    settler,
    observer,
    clock,
    logger,
    random: () => 0.5,
    evolver,
  });
  const submit = (n: number, schemaKey: string, shape: readonly TableField[], row: (i: number) => Row): TrackedEnvelope[] =>
    Array.from({ length: n }, (_, i) => {
      const envelope = trackedEnvelope();
      pipeline.submit({ envelope, prepared: pipeline.prepare(envelope.id, row(i)), schemaKey, shape });
      return envelope;
    });
  return { clock, schema, sink, evolver, deadLetters, observer, pipeline, submit, logged };
}

const rowV1 = (i: number): Row => ({ n: i, path: `/p/${i}` });
const rowV2 = (i: number): Row => ({ n: i, path: `/p/${i}`, region: 'eu', tags: ['a', 'b'], geo: { city: 'Lyon' } });

/** insertAll's answer naming a field it does not know, for every row of the request. */
function noSuchField(field: string) {
  return (rows: readonly unknown[]) => ({
    failures: rowFailures(
      rows.map((_, index) => ({ index, errors: [{ reason: 'invalid', location: field, message: `no such field: ${field}.` }] })),
      rows.length,
      table,
    ),
  });
}

async function drainOn(clock: ManualClock, pipeline: RoutePipeline): Promise<void> {
  const drained = pipeline.drain();
  await clock.runAll();
  await drained;
}

describe('schema evolution in the route', () => {
  it('add-columns: rows with new fields wait for one change of the table, then land with their values', async () => {
    const { clock, schema, sink, evolver, deadLetters, observer, pipeline, submit, logged } = setup();
    let open: () => void = () => undefined;
    evolver.gate = new Promise<void>((resolve) => {
      open = resolve;
    });
    const old = submit(3, 'confluent:1', rev1, rowV1);
    const fresh = submit(12, 'confluent:2', rev2, rowV2);
    await clock.advance(10);
    // The change is in flight: the batches needing it are held, not failed, and /status says why.
    const status = pipeline.status();
    expect(status.pendingChange).toMatchObject({ kind: 'add-columns', schemaId: 'confluent:2' });
    expect(status.pendingChange?.heldRows).toBeGreaterThan(0);
    expect([...old, ...fresh].every((e) => e.settledAs === undefined)).toBe(true);
    await clock.advance(150_000);
    expect(pipeline.status().stalled).toBe(false);
    open();
    await drainOn(clock, pipeline);
    expect(evolver.patches).toBe(1);
    expect(schema.fields.map((f) => f.name)).toEqual(['n', 'path', 'region', 'tags', 'geo']);
    expect(deadLetters.published).toEqual([]);
    expect([...old, ...fresh].every((e) => e.settledAs === 'ack')).toBe(true);
    const sent = sink.calls.flat().map((r) => r.row);
    expect(sent.filter((r) => r.region === 'eu')).toHaveLength(12);
    expect(sent.find((r) => r.region === 'eu')).toEqual({ n: 0, path: '/p/0', region: 'eu', tags: ['a', 'b'], geo: { city: 'Lyon' } });
    expect(pipeline.status().pendingChange).toBeUndefined();
    // The held rows' wait is observed, and the change is logged once with its diff.
    expect(observer.waits.filter((w) => w.kind === 'add-columns').reduce((n, w) => n + w.rows, 0)).toBe(12);
    expect(Math.max(...observer.waits.map((w) => w.seconds))).toBeGreaterThanOrEqual(150);
    const changes = logged.filter((l) => l.message === 'Table schema changed.');
    expect(changes).toHaveLength(1);
    expect(changes[0]?.fields).toMatchObject({
      diff: ['+ region STRING NULLABLE', '+ tags STRING REPEATED', '+ geo RECORD NULLABLE', '+ geo.city STRING NULLABLE'],
    });
  });

  it('a change another replica made first (nothing left to do here) still makes the route re-read the table', async () => {
    const { clock, schema, evolver, deadLetters, pipeline, submit } = setup();
    submit(1, 'confluent:1', rev1, rowV1);
    await clock.advance(10);
    await clock.advance(1000);
    schema.fields = structuredClone(rev2);
    const envelopes = submit(3, 'confluent:2', rev2, rowV2);
    await drainOn(clock, pipeline);
    expect(evolver.patches).toBe(0);
    expect(deadLetters.published).toEqual([]);
    expect(envelopes.every((e) => e.settledAs === 'ack')).toBe(true);
  });

  it('a field that became nullable relaxes its REQUIRED column, and rows leaving it empty land', async () => {
    const { clock, schema, deadLetters, pipeline, submit } = setup();
    const nullablePath: TableField[] = [rev1[0] as TableField, { name: 'path', type: 'STRING', mode: 'NULLABLE' }];
    schema.fields = [rev1[0] as TableField, { name: 'path', type: 'STRING', mode: 'REQUIRED' }];
    const envelopes = submit(3, 'confluent:7', nullablePath, (i) => ({ n: i, path: null }));
    await drainOn(clock, pipeline);
    expect(schema.fields[1]?.mode).toBe('NULLABLE');
    expect(deadLetters.published).toEqual([]);
    expect(envelopes.every((e) => e.settledAs === 'ack')).toBe(true);
  });

  it('an incompatible schema is refused: its rows are dead-lettered naming the field and both types, the table is untouched, the rest flows', async () => {
    const { clock, schema, sink, evolver, deadLetters, pipeline, submit } = setup();
    const before = structuredClone(schema);
    const bad = submit(4, 'confluent:3', rev3, (i) => ({ n: `x${i}`, path: '/bad' }));
    const good = submit(4, 'confluent:1', rev1, rowV1);
    await drainOn(clock, pipeline);
    expect(schema).toEqual(before);
    expect(evolver.patches).toBe(0);
    expect(deadLetters.published).toHaveLength(4);
    for (const published of deadLetters.published) {
      expect(published.code).toBe('SCHEMA_INCOMPATIBLE');
      expect(published.message).toMatch(/field "n" is INT64 in the table but STRING in the record/);
    }
    expect(new Set(deadLetters.published.map((p) => p.id))).toEqual(new Set(bad.map((e) => e.id)));
    expect(good.every((e) => e.settledAs === 'ack')).toBe(true);
    expect(sink.calls.flat()).toHaveLength(4);
  });

  it('schemaEvolution off: a field the table lacks is dead-lettered as today and the table is not asked to change', async () => {
    const { clock, evolver, deadLetters, pipeline, submit } = setup({ schemaEvolution: 'off' });
    submit(2, 'confluent:2', rev2, rowV2);
    await drainOn(clock, pipeline);
    expect(evolver.evolveCalls).toBe(0);
    expect(deadLetters.published.map((p) => p.code)).toEqual(['UNKNOWN_FIELD', 'UNKNOWN_FIELD']);
  });
});

describe('the propagation window', () => {
  it('a "no such field" answer for a field the fresh schema has is a wait: the rows are sent again and land, outside the retry budget', async () => {
    const { clock, sink, deadLetters, observer, pipeline, submit } = setup(
      { schemaEvolution: 'off', retry: { maxAttempts: 1, initialDelayMs: 100, maxDelayMs: 100 } },
      rev2,
    );
    // Streaming inserts keep refusing `region` for about 20 s.
    const until = clock.now() + 20_000;
    sink.answers.push(...Array.from({ length: 50 }, () => (rows: readonly unknown[]) => (clock.now() < until ? noSuchField('region')(rows) : {})));
    const envelopes = submit(5, 'confluent:2', rev2, rowV2);
    await clock.advance(10);
    expect(pipeline.status().pendingChange).toMatchObject({ kind: 'propagation', heldRows: 5 });
    await drainOn(clock, pipeline);
    expect(deadLetters.published).toEqual([]);
    expect(envelopes.every((e) => e.settledAs === 'ack' && e.settleCount === 1)).toBe(true);
    // A few resends with backoff (1 s doubling, jitter pinned at 0.5), not a hot loop.
    expect(sink.calls.length).toBeGreaterThan(2);
    expect(sink.calls.length).toBeLessThan(12);
    expect(new Set(sink.calls.map((c) => c.map((r) => r.id).join())).size).toBe(1);
    expect(observer.retries.filter((c) => c === 'SCHEMA_PROPAGATING').length).toBe(sink.calls.length - 1);
    const waited = observer.waits.filter((w) => w.kind === 'propagation');
    expect(waited).toHaveLength(1);
    expect(waited[0]?.seconds).toBeGreaterThanOrEqual(20);
  });

  it('the wait is bounded: past it the rows are nacked for redelivery, never dead-lettered', async () => {
    const { clock, sink, deadLetters, observer, pipeline, submit } = setup({ schemaEvolution: 'off' }, rev2);
    sink.answers.push(...Array.from({ length: 1000 }, () => noSuchField('region')));
    const envelopes = submit(2, 'confluent:2', rev2, rowV2);
    await clock.advance(10);
    const started = clock.now();
    while (envelopes.some((e) => e.settledAs === undefined) && clock.now() - started < 2 * PROPAGATION_WAIT_BOUND_MS) await clock.advance(1000);
    expect(clock.now() - started).toBeGreaterThanOrEqual(PROPAGATION_WAIT_BOUND_MS - 1000);
    expect(clock.now() - started).toBeLessThanOrEqual(PROPAGATION_WAIT_BOUND_MS + 1000);
    expect(envelopes.every((e) => e.settledAs === 'nack')).toBe(true);
    expect(observer.nacks).toEqual(['SCHEMA_PROPAGATING', 'SCHEMA_PROPAGATING']);
    expect(deadLetters.published).toEqual([]);
    // Backoff up to PROPAGATION_BACKOFF.maxDelayMs: about 10 min / 15 s (pinned jitter) sends, not hundreds.
    expect(sink.calls.length).toBeLessThan(PROPAGATION_WAIT_BOUND_MS / (PROPAGATION_BACKOFF.maxDelayMs / 2) + 8);
    await drainOn(clock, pipeline);
  });

  it('a "no such field" answer for a field the fresh schema lacks is dead-lettered as before', async () => {
    const { clock, sink, deadLetters, pipeline, submit } = setup({ schemaEvolution: 'off' }, rev1);
    sink.answers.push(noSuchField('path'));
    // The table loses `path` after the rows were checked (a person dropped it).
    const envelopes = submit(2, 'confluent:1', rev1, rowV1);
    sink.answers.unshift((rows) => {
      (sink as unknown as { schema: TableSchema }).schema.fields = [rev1[0] as TableField];
      return noSuchField('path')(rows);
    });
    await drainOn(clock, pipeline);
    expect(deadLetters.published.map((p) => p.code)).toEqual(['BIGQUERY_ROW_INVALID', 'BIGQUERY_ROW_INVALID']);
    expect(envelopes.every((e) => e.settledAs === 'ack')).toBe(true);
  });
});

describe('creating a missing table', () => {
  it('creates the table once from the rows in hand with the layout, then waits out notFound from inserts instead of pausing', async () => {
    const layout: TableLayout = { partitioning: { type: 'DAY', field: 'ts' }, clustering: ['path'] };
    const { clock, sink, evolver, deadLetters, pipeline, submit } = setup({ createTable: layout, schemaEvolution: 'off' });
    sink.schemaError = new TributaryError('TABLE_NOT_FOUND', 'Not found: Table p:d.access');
    sink.answers.push(
      new TributaryError('TABLE_NOT_FOUND', 'Not found: Table p:d.access'),
      new TributaryError('TABLE_NOT_FOUND', 'Not found: Table p:d.access'),
    );
    const envelopes = submit(25, 'confluent:1', rev1, rowV1);
    await clock.advance(10);
    expect(pipeline.status().state).toBe('running');
    await drainOn(clock, pipeline);
    expect(evolver.creates).toHaveLength(1);
    expect(evolver.creates[0]).toEqual({ fields: rev1, layout });
    expect(deadLetters.published).toEqual([]);
    expect(envelopes.every((e) => e.settledAs === 'ack' && e.settleCount === 1)).toBe(true);
  });

  it('without createTable a missing table pauses the route, as before', async () => {
    const { clock, sink, evolver, pipeline, submit } = setup({ schemaEvolution: 'off' });
    sink.schemaError = new TributaryError('TABLE_NOT_FOUND', 'Not found');
    submit(2, 'confluent:1', rev1, rowV1);
    await clock.advance(10);
    expect(pipeline.status().state).toBe('paused');
    expect(evolver.creates).toHaveLength(0);
    await drainOn(clock, pipeline);
  });
});
