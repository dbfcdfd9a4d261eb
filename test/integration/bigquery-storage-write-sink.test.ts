import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { BigQuerySink } from '../../src/adapters/bigquery-sink.js';
import { createStorageWriteSink } from '../../src/adapters/bigquery-storage-write-sink.js';
import { createStorageRowEncoder } from '../../src/adapters/storage-row-encoder.js';
import type { AvroSchema } from '../../src/core/avro-type.js';
import { createAvroType } from '../../src/core/avro-type.js';
import { createRowConverter } from '../../src/core/rows/row-converter.js';
import type { PreparedRow, Sink } from '../../src/core/sink.js';
import type { Row, TableRef, TableSchema } from '../../src/core/table-schema.js';
import { TributaryError } from '../../src/errors.js';
import { startBigQueryTestServer, type BigQueryTestServer } from '../support/bigquery-test-server.js';
import { accessRecord, accessV1, accessV2, audit, auditRecord, metric, metricRecord, tableSchemaFor } from '../support/log-schemas.js';
import { startStorageWriteTestServer, type StorageWriteTestServer } from '../support/storage-write-test-server.js';
import { until } from '../support/until.js';

process.env['METADATA_SERVER_DETECTION'] = 'none';

const PROJECT = 'test-project';
const DATASET = 'logs';
const TIMEOUT_MS = 2_000;

/** Every row of docs/type-mapping.md in one schema. */
const everything = {
  type: 'record',
  name: 'Everything',
  namespace: 'com.acme.test',
  fields: [
    { name: 'i', type: 'int' },
    { name: 'l', type: 'long' },
    { name: 'f', type: 'float' },
    { name: 'd', type: 'double' },
    { name: 'b', type: 'boolean' },
    { name: 's', type: 'string' },
    { name: 'raw', type: 'bytes' },
    { name: 'fx', type: { type: 'fixed', name: 'Four', size: 4 } },
    { name: 'e', type: { type: 'enum', name: 'Color', symbols: ['RED', 'GREEN'] } },
    { name: 'tsm', type: { type: 'long', logicalType: 'timestamp-millis' } },
    { name: 'tsu', type: { type: 'long', logicalType: 'timestamp-micros' } },
    { name: 'lts', type: { type: 'long', logicalType: 'local-timestamp-micros' } },
    { name: 'day', type: { type: 'int', logicalType: 'date' } },
    { name: 'tm', type: { type: 'int', logicalType: 'time-millis' } },
    { name: 'tu', type: { type: 'long', logicalType: 'time-micros' } },
    { name: 'num', type: { type: 'bytes', logicalType: 'decimal', precision: 20, scale: 4 } },
    { name: 'bignum', type: { type: 'bytes', logicalType: 'decimal', precision: 50, scale: 20 } },
    {
      name: 'rec',
      type: {
        type: 'record',
        name: 'Inner',
        fields: [
          { name: 'x', type: ['null', 'long'], default: null },
          { name: 'ys', type: { type: 'array', items: 'string' } },
        ],
      },
    },
    { name: 'recs', type: { type: 'array', items: 'Inner' } },
    { name: 'm', type: { type: 'map', values: 'long' } },
    { name: 'aa', type: { type: 'array', items: { type: 'array', items: 'int' } } },
    { name: 'u', type: ['null', 'int', 'string'] },
    { name: 'opt', type: ['null', 'string'], default: null },
    { name: 'optArr', type: ['null', { type: 'array', items: 'double' }], default: null },
  ],
} as const satisfies AvroSchema;

function everythingRecord(i: number): Record<string, unknown> {
  const sign = i % 2 === 0 ? 1n : -1n;
  return {
    i: i % 2 === 0 ? 2_147_483_647 : -2_147_483_648,
    l: sign * (2n ** 62n + BigInt(i)),
    f: 1.5,
    d: i % 3 === 0 ? Number.NaN : i / 7,
    b: i % 2 === 0,
    s: `héllo ${i} ✓`,
    raw: Buffer.from([0, 255, i]),
    fx: Buffer.from([1, 2, 3, i]),
    e: i % 2 === 0 ? 'RED' : 'GREEN',
    tsm: -86_400_000n * 365n * 80n + BigInt(i),
    tsu: i % 2 === 0 ? -1n : 253_402_300_799_999_999n,
    lts: -62_135_596_800_000_000n + BigInt(i),
    day: i % 2 === 0 ? -719_162 : -1,
    tm: 86_399_999,
    tu: 1n + BigInt(i),
    num: Buffer.from([0x80, 0x00, 0x00, 0x01]),
    bignum: Buffer.from('7fffffffffffffffffffffffffffffffffff', 'hex'),
    rec: { x: i % 2 === 0 ? null : { long: 9_007_199_254_740_993n }, ys: ['a', 'b'] },
    recs: [
      { x: { long: -5n }, ys: [] },
      { x: null, ys: ['c'] },
    ],
    m: { k1: 1n, k2: -(2n ** 63n) },
    aa: [[1, 2], [], [3]],
    u: i % 3 === 0 ? null : i % 3 === 1 ? { int: i } : { string: `s${i}` },
    opt: i % 2 === 0 ? null : { string: 'present' },
    optArr: i % 2 === 0 ? null : { array: [0.25, -2] },
  };
}

const SCHEMAS: ReadonlyArray<[string, AvroSchema, (i: number) => Record<string, unknown>]> = [
  ['access v1', accessV1, (i) => accessRecord(i)],
  ['access v2', accessV2, (i) => accessRecord(i, { latency_ms: i % 2 ? { double: i * 1.25 } : null })],
  ['audit', audit, auditRecord],
  ['metric', metric, metricRecord],
  ['every mapped type', everything, everythingRecord],
];

let rest: BigQueryTestServer;
let storage: StorageWriteTestServer;
let sink: Sink;
let tableCounter = 0;

beforeAll(async () => {
  rest = await startBigQueryTestServer();
  storage = await startStorageWriteTestServer({ tables: rest });
});

afterAll(async () => {
  await storage.close();
  await rest.close();
});

beforeEach(() => {
  sink = createStorageWriteSink({ projectId: PROJECT, apiEndpoint: rest.url, storageApiEndpoint: storage.endpoint, timeoutMs: TIMEOUT_MS });
});

afterEach(async () => {
  await sink.close?.();
  storage.resetFaults();
  storage.clearRequests();
});

function newTable(schema: TableSchema): TableRef {
  tableCounter += 1;
  const ref: TableRef = { projectId: PROJECT, datasetId: DATASET, tableId: `t${tableCounter}` };
  rest.createTable(ref, schema);
  return ref;
}

function rowsOf(avro: AvroSchema, make: (i: number) => Record<string, unknown>, count: number): Row[] {
  const type = createAvroType(avro);
  const convert = createRowConverter(avro);
  return Array.from({ length: count }, (_, i) => ({
    ...convert(type.fromBuffer(type.toBuffer(make(i)))),
    _message_id: `m-${i}`,
    _publish_time: '2025-11-24T16:00:00.000000Z',
  }));
}

function prepared(rows: readonly Row[], prefix = 'm'): PreparedRow[] {
  return rows.map((row, i) => sink.prepare(`${prefix}-${i}`, row));
}

async function failureOf(promise: Promise<unknown>): Promise<TributaryError> {
  try {
    await promise;
  } catch (err) {
    if (err instanceof TributaryError) return err;
    throw err;
  }
  throw new Error('expected the write to throw');
}

const simple: TableSchema = {
  fields: [
    { name: 'id', type: 'STRING', mode: 'REQUIRED' },
    { name: 'n', type: 'INT64' },
  ],
};

function ids(table: TableRef): unknown[] {
  return rest.rows(table).map((r) => r.json['id']);
}

describe('Storage Write sink: what lands is what insertAll lands', () => {
  it.each(SCHEMAS)('%s: value by value', async (_name, avro, make) => {
    const schema = tableSchemaFor(avro);
    const viaInsertAll = newTable(schema);
    const viaStorage = newTable(schema);
    const rows = rowsOf(avro, make, 12);

    const insertAll = new BigQuerySink({ projectId: PROJECT, apiEndpoint: rest.url, timeoutMs: TIMEOUT_MS });
    const inserted = await insertAll.write(
      viaInsertAll,
      rows.map((json, i) => insertAll.prepare(`m-${i}`, json)),
    );
    expect(inserted.failures).toEqual([]);
    const written = await sink.write(viaStorage, prepared(rows));
    expect(written.failures).toEqual([]);

    const landedInsertAll = rest.rows(viaInsertAll).map((r) => r.json);
    const landedStorage = rest.rows(viaStorage).map((r) => r.json);
    expect(landedStorage).toHaveLength(rows.length);
    expect(landedStorage).toEqual(landedInsertAll);
  });

  it('bills the rows encoded bytes, far under insertAll 1 KB minimum per row', async () => {
    const schema = tableSchemaFor(accessV1);
    const table = newTable(schema);
    const rows = rowsOf(accessV1, (i) => accessRecord(i), 20);
    const encoder = createStorageRowEncoder(schema);
    const encodedBytes = rows.reduce((sum, row) => sum + encoder.encode(row).length, 0);
    const batch = prepared(rows);
    const outcome = await sink.write(table, batch);
    expect(outcome.billedBytes).toBe(encodedBytes);
    expect(outcome.billedBytes).toBeLessThan(rows.length * 1024);
    // prepare() measures a bound the request limit can rely on.
    for (const [i, p] of batch.entries()) expect(p.bytes).toBeGreaterThanOrEqual(encoder.encode(rows[i] as Row).length);
  });
});

describe('Storage Write sink: connections', () => {
  it('reuses one connection per table across writes', async () => {
    const table = newTable(simple);
    const before = storage.connectionCount;
    for (let i = 0; i < 5; i++) await sink.write(table, prepared([{ id: `r${i}`, n: i }], `w${i}`));
    expect(ids(table)).toEqual(['r0', 'r1', 'r2', 'r3', 'r4']);
    expect(storage.connectionCount - before).toBe(1);
    expect(new Set(storage.requests.map((r) => r.connection)).size).toBe(1);
  });

  it('survives a stream the server closes while idle (no crash) and writes on a new one', async () => {
    const table = newTable(simple);
    const failures: Error[] = [];
    const observed = createStorageWriteSink({
      projectId: PROJECT,
      apiEndpoint: rest.url,
      storageApiEndpoint: storage.endpoint,
      timeoutMs: TIMEOUT_MS,
      onConnectionFailure: (_table, err) => failures.push(err),
    });
    try {
      await observed.write(table, prepared([{ id: 'a' }]));
      storage.closeStreams(14);
      await until('the sink to see the stream close', () => failures.length > 0, 5_000);
      expect(failures[0]?.message).toContain('inactive');
      await observed.write(table, prepared([{ id: 'b' }]));
      expect(ids(table)).toEqual(['a', 'b']);
      expect(new Set(storage.requests.map((r) => r.connection)).size).toBe(2);
    } finally {
      await observed.close?.();
    }
  });

  it('sends concurrent writes on the one connection and matches each answer to its write', async () => {
    const table = newTable(simple);
    storage.rejectRow((row) => (row['id'] === 'bad' ? 'bad row' : null));
    const outcomes = await Promise.all([
      sink.write(table, prepared([{ id: 'a' }])),
      sink.write(table, prepared([{ id: 'ok' }, { id: 'bad' }])),
      sink.write(table, prepared([{ id: 'c' }])),
    ]);
    expect(outcomes.map((o) => o.failures.length)).toEqual([0, 2, 0]);
    expect(ids(table).sort()).toEqual(['a', 'c']);
  });
});

describe('Storage Write sink: per-row outcome', () => {
  it('row errors: exactly those rows rejected with the server message, the others retried at once', async () => {
    const table = newTable(simple);
    storage.rejectRow((row) => (String(row['id']).startsWith('poison') ? `poison row ${String(row['id'])}` : null));
    const rows: Row[] = [{ id: 'a', n: 1 }, { id: 'poison-1' }, { id: 'b' }, { id: 'poison-2' }];
    const outcome = await sink.write(table, prepared(rows));
    expect(outcome.failures).toEqual([
      { index: 0, kind: 'retry', code: 'BIGQUERY_ROW_RETRYABLE', immediate: true },
      { index: 1, kind: 'rejected', code: 'BIGQUERY_ROW_INVALID', reason: 'poison row poison-1' },
      { index: 2, kind: 'retry', code: 'BIGQUERY_ROW_RETRYABLE', immediate: true },
      { index: 3, kind: 'rejected', code: 'BIGQUERY_ROW_INVALID', reason: 'poison row poison-2' },
    ]);
    expect(outcome.billedBytes).toBe(0);
    expect(rest.rows(table)).toEqual([]);
    const again = await sink.write(table, prepared([rows[0] as Row, rows[2] as Row]));
    expect(again.failures).toEqual([]);
    expect(ids(table)).toEqual(['a', 'b']);
  });

  it('a value BigQuery refuses (a missing REQUIRED column) comes back as a row error', async () => {
    const table = newTable(simple);
    const outcome = await sink.write(table, prepared([{ id: 'a' }, { n: 2 }]));
    expect(outcome.failures[1]).toMatchObject({ index: 1, kind: 'rejected', code: 'BIGQUERY_ROW_INVALID' });
    expect((outcome.failures[1] as { reason: string }).reason).toContain('Missing required field: id');
  });

  it('a row the encoder cannot write is rejected alone and the rest of the batch is written', async () => {
    const table = newTable(simple);
    const outcome = await sink.write(
      table,
      prepared([
        { id: 'a', n: 'ten' },
        { id: 'b', n: 2 },
      ]),
    );
    expect(outcome.failures).toEqual([{ index: 0, kind: 'rejected', code: 'BIGQUERY_ROW_INVALID', reason: 'field "n": expected an integer, got "ten"' }]);
    expect(ids(table)).toEqual(['b']);
  });

  it('a field the table does not have, even after reading the schema again: rejected, staleSchema set', async () => {
    const table = newTable(simple);
    const outcome = await sink.write(table, prepared([{ id: 'a', nope: 1 }, { id: 'b' }]));
    expect(outcome.failures).toEqual([{ index: 0, kind: 'rejected', code: 'BIGQUERY_ROW_INVALID', reason: 'no such field: nope.', staleSchema: true }]);
    expect(ids(table)).toEqual(['b']);
  });
});

describe('Storage Write sink: append errors', () => {
  it.each([
    [14, 'BIGQUERY_UNAVAILABLE'],
    [4, 'BIGQUERY_UNAVAILABLE'],
    [13, 'BIGQUERY_UNAVAILABLE'],
    [10, 'BIGQUERY_UNAVAILABLE'],
    [8, 'BIGQUERY_RATE_LIMITED'],
    [5, 'TABLE_NOT_FOUND'],
    [7, 'ACCESS_DENIED'],
  ] as const)('gRPC code %i in the answer is thrown as %s, and the next write lands', async (code, expected) => {
    const table = newTable(simple);
    storage.failNext(1, { code });
    expect((await failureOf(sink.write(table, prepared([{ id: 'a' }])))).code).toBe(expected);
    expect(rest.rows(table)).toEqual([]);
    expect((await sink.write(table, prepared([{ id: 'a' }]))).failures).toEqual([]);
    expect(ids(table)).toEqual(['a']);
  });

  it('a stream closed with a status is thrown by its code; the next write opens a new connection', async () => {
    const table = newTable(simple);
    await sink.write(table, prepared([{ id: 'first' }]));
    const before = storage.connectionCount;
    storage.failNext(1, { code: 8, mode: 'stream' });
    expect((await failureOf(sink.write(table, prepared([{ id: 'a' }])))).code).toBe('BIGQUERY_RATE_LIMITED');
    await sink.write(table, prepared([{ id: 'a' }]));
    expect(ids(table)).toEqual(['first', 'a']);
    expect(storage.connectionCount - before).toBe(1);
  });

  it('a missing table: TABLE_NOT_FOUND, from the schema read or the append', async () => {
    const missing: TableRef = { projectId: PROJECT, datasetId: DATASET, tableId: 'missing' };
    expect((await failureOf(sink.write(missing, prepared([{ id: 'a' }])))).code).toBe('TABLE_NOT_FOUND');
    const table = newTable(simple);
    await sink.write(table, prepared([{ id: 'a' }]));
    rest.deleteTable(table);
    expect((await failureOf(sink.write(table, prepared([{ id: 'b' }])))).code).toBe('TABLE_NOT_FOUND');
    // Recreated with another type for a column: the writer reads the new schema.
    rest.createTable(table, { fields: [simple.fields[0] as never, { name: 'n', type: 'STRING' }] });
    expect((await sink.write(table, prepared([{ id: 'c', n: 'text now' }]))).failures).toEqual([]);
    expect(rest.rows(table).map((r) => r.json)).toEqual([{ id: 'c', n: 'text now' }]);
  });

  it('a broken stream after the rows were stored: thrown as transient; the retry duplicates, nothing is lost', async () => {
    const table = newTable(simple);
    storage.breakNext(1, { afterCommit: true });
    expect((await failureOf(sink.write(table, prepared([{ id: 'a' }])))).code).toBe('BIGQUERY_UNAVAILABLE');
    await sink.write(table, prepared([{ id: 'a' }]));
    expect(ids(table)).toEqual(['a', 'a']);
  });

  it('a broken stream before storing: every write in flight fails and is written on retry', async () => {
    const table = newTable(simple);
    await sink.write(table, prepared([{ id: 'warm' }]));
    storage.setLatency(100);
    storage.breakNext(1);
    const results = await Promise.allSettled([sink.write(table, prepared([{ id: 'x' }])), sink.write(table, prepared([{ id: 'y' }]))]);
    expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected']);
    storage.setLatency(0);
    await sink.write(table, prepared([{ id: 'x' }, { id: 'y' }]));
    expect(ids(table)).toEqual(['warm', 'x', 'y']);
  });

  it('a slow append past the timeout is thrown as transient; the next write works on a new connection', async () => {
    const table = newTable(simple);
    storage.setLatency(TIMEOUT_MS + 500);
    const started = Date.now();
    expect((await failureOf(sink.write(table, prepared([{ id: 'slow' }])))).code).toBe('BIGQUERY_UNAVAILABLE');
    expect(Date.now() - started).toBeLessThan(TIMEOUT_MS + 400);
    storage.setLatency(0);
    await sink.write(table, prepared([{ id: 'fast' }]));
    expect(ids(table)).toContain('fast');
  });

  it('INVALID_ARGUMENT without row errors: too large splits (REQUEST_TOO_LARGE), a single row is rejected, never a loop', async () => {
    const small = await startStorageWriteTestServer({ tables: rest, maxRequestBytes: 1_500 });
    const smallSink = createStorageWriteSink({ projectId: PROJECT, apiEndpoint: rest.url, storageApiEndpoint: small.endpoint, timeoutMs: TIMEOUT_MS });
    try {
      const table = newTable(simple);
      const rows: Row[] = Array.from({ length: 4 }, (_, i) => ({ id: `${i}-${'x'.repeat(500)}` }));
      expect(
        (
          await failureOf(
            smallSink.write(
              table,
              rows.map((r, i) => smallSink.prepare(`m${i}`, r)),
            ),
          )
        ).code,
      ).toBe('REQUEST_TOO_LARGE');
      const half = await smallSink.write(
        table,
        rows.slice(0, 2).map((r, i) => smallSink.prepare(`m${i}`, r)),
      );
      expect(half.failures).toEqual([]);
      const huge = await smallSink.write(table, [smallSink.prepare('big', { id: 'y'.repeat(2_000) })]);
      expect(huge.failures).toMatchObject([{ index: 0, kind: 'rejected', code: 'BIGQUERY_ROW_INVALID' }]);
    } finally {
      await smallSink.close?.();
      await small.close();
    }
  });

  it('a row larger than a request can carry is refused as ROW_TOO_LARGE by its encoded size, the others of its batch land', async () => {
    const table = newTable(simple);
    const big = sink.prepare('big', { id: 'z'.repeat(9_500_000) });
    // Measured for batching as a request of its own.
    expect(big.bytes).toBe(sink.limits.maxRequestBytes);
    const requests = storage.requests.length;
    const outcome = await sink.write(table, [big, ...prepared([{ id: 'small' }])]);
    expect(outcome.failures).toMatchObject([{ index: 0, kind: 'rejected', code: 'ROW_TOO_LARGE' }]);
    expect(ids(table)).toEqual(['small']);
    expect(storage.requests.slice(requests).every((r) => r.bytes < 1_000_000)).toBe(true);
  });

  it('a row whose loose size bound is over the budget but which encodes small is written: a million booleans', async () => {
    const table = newTable({
      fields: [
        { name: 'id', type: 'STRING', mode: 'NULLABLE' },
        { name: 'flags', type: 'BOOLEAN', mode: 'REPEATED' },
      ],
    });
    const flags = Array.from({ length: 1_000_000 }, (_, i) => i % 7 === 0);
    const row = sink.prepare('flags', { id: 'flags', flags });
    expect(row.bytes).toBe(sink.limits.maxRequestBytes);
    expect(await sink.write(table, [row])).toMatchObject({ failures: [] });
    const stored = rest.rows(table).map((r) => r.json);
    expect(stored).toHaveLength(1);
    expect(stored[0]?.flags).toEqual(flags);
  });
});

describe('Storage Write sink: schema changes', () => {
  it('a row with a column the table gained since the writer was made: the new schema is read, the value lands', async () => {
    const table = newTable(simple);
    await sink.write(table, prepared([{ id: 'before' }]));
    const before = storage.connectionCount;
    rest.setSchema(table, { fields: [...simple.fields, { name: 'added', type: 'STRING' }] });
    const outcome = await sink.write(table, prepared([{ id: 'after', added: 'new value' }]));
    expect(outcome.failures).toEqual([]);
    expect(rest.rows(table).map((r) => r.json)).toEqual([
      { id: 'before', n: null },
      { id: 'after', n: null, added: 'new value' },
    ]);
    expect(storage.connectionCount - before).toBe(1);
  });

  it('an updated schema reported by the server: the next write uses a new connection with the new writer schema', async () => {
    const table = newTable(simple);
    await sink.write(table, prepared([{ id: 'one' }]));
    rest.setSchema(table, { fields: [...simple.fields, { name: 'added', type: 'INT64' }] });
    await sink.write(table, prepared([{ id: 'two' }]));
    expect(storage.requests.at(-1)?.updatedSchema).toBe(true);
    const connection = storage.requests.at(-1)?.connection;
    await sink.write(table, prepared([{ id: 'three', added: '9007199254740993' }]));
    expect(storage.requests.at(-1)?.connection).not.toBe(connection);
    expect(storage.requests.at(-1)?.updatedSchema).toBe(false);
    expect(rest.rows(table).at(-1)?.json).toEqual({ id: 'three', n: null, added: '9007199254740993' });
  });

  it('while the write path does not know a new column yet, rows are held (thrown as transient), then land with it', async () => {
    const table = newTable(simple);
    await sink.write(table, prepared([{ id: 'before' }]));
    const grown: TableSchema = { fields: [...simple.fields, { name: 'added', type: 'STRING' }] };
    rest.setSchema(table, grown);
    storage.lagSchema(table, simple);
    const held = await failureOf(sink.write(table, prepared([{ id: 'held', added: 'kept' }])));
    expect(held.code).toBe('BIGQUERY_UNAVAILABLE');
    expect(held.message).toContain('more fields than BigQuery schema');
    expect(ids(table)).toEqual(['before']);
    storage.lagSchema(table, null);
    expect((await sink.write(table, prepared([{ id: 'held', added: 'kept' }]))).failures).toEqual([]);
    expect(rest.rows(table).at(-1)?.json).toEqual({ id: 'held', n: null, added: 'kept' });
  });

  it('a new writer schema does not fail appends still in flight on the old connection', async () => {
    const table = newTable(simple);
    await sink.write(table, prepared([{ id: 'warm' }]));
    storage.setLatency(200);
    const inFlight = sink.write(table, prepared([{ id: 'old' }]));
    rest.setSchema(table, { fields: [...simple.fields, { name: 'added', type: 'STRING' }] });
    const withNewField = sink.write(table, prepared([{ id: 'new', added: 'v' }]));
    const outcomes = await Promise.all([inFlight, withNewField]);
    expect(outcomes.map((o) => o.failures)).toEqual([[], []]);
    expect(ids(table).sort()).toEqual(['new', 'old', 'warm']);
    expect(new Set(storage.requests.map((r) => r.connection)).size).toBe(2);
  });

  it('a nested column added inside a RECORD lands too', async () => {
    const nested: TableSchema = {
      fields: [
        { name: 'id', type: 'STRING' },
        { name: 'r', type: 'RECORD', fields: [{ name: 'a', type: 'STRING' }] },
      ],
    };
    const table = newTable(nested);
    await sink.write(table, prepared([{ id: '1', r: { a: 'x' } }]));
    rest.setSchema(table, {
      fields: [
        nested.fields[0] as never,
        {
          name: 'r',
          type: 'RECORD',
          fields: [
            { name: 'a', type: 'STRING' },
            { name: 'b', type: 'DATE' },
          ],
        },
      ],
    });
    await sink.write(table, prepared([{ id: '2', r: { a: 'y', b: '1969-07-20' } }]));
    expect(rest.rows(table).at(-1)?.json).toEqual({ id: '2', r: { a: 'y', b: '1969-07-20' } });
  });
});
