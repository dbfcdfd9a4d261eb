import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createDuckDbSink, DuckDbSink, DuckDbUnavailableError, parseDuckType } from '../../src/adapters/duckdb-sink.js';
import { parseConfig } from '../../src/config.js';
import { createAvroType, type AvroSchema } from '../../src/core/avro-type.js';
import { bigQueryFieldsFor } from '../../src/core/rows/bigquery-fields.js';
import { createRowConverter } from '../../src/core/rows/row-converter.js';
import { createRowValidator } from '../../src/core/rows/row-validator.js';
import { routeTableFields } from '../../src/core/schema-diff.js';
import type { Row, TableField, TableRef } from '../../src/core/table-schema.js';
import type { RowFailure } from '../../src/core/sink.js';
import { TributaryError } from '../../src/errors.js';
import { accessRecord, accessV2, encode, metric, METADATA_FIELDS } from '../support/log-schemas.js';

const ACCESS: TableRef = { projectId: 'test-project', datasetId: 'logs', tableId: 'access' };
const TYPES: TableRef = { projectId: 'test-project', datasetId: 'logs', tableId: 'types' };

/** Every BigQuery type the DuckDB sink maps, at the top level and nested. */
const typesSchema: TableField[] = [
  { name: 'id', type: 'STRING', mode: 'REQUIRED' },
  { name: 'n', type: 'INTEGER' },
  { name: 'f', type: 'FLOAT' },
  { name: 'ok', type: 'BOOLEAN' },
  { name: 'b', type: 'BYTES' },
  { name: 'amount', type: 'NUMERIC', precision: '12', scale: '2' },
  { name: 'huge', type: 'BIGNUMERIC', precision: '60', scale: '10' },
  { name: 'at', type: 'TIMESTAMP' },
  { name: 'local', type: 'DATETIME' },
  { name: 'day', type: 'DATE' },
  { name: 'clock', type: 'TIME' },
  {
    name: 'nested',
    type: 'RECORD',
    mode: 'REPEATED',
    fields: [
      { name: 'k', type: 'STRING', mode: 'REQUIRED' },
      { name: 'when', type: 'TIMESTAMP' },
      { name: 'raw', type: 'BYTES', mode: 'REPEATED' },
    ],
  },
];

function decodedRow(schema: AvroSchema, record: Record<string, unknown>): Row {
  return createRowConverter(schema)(createAvroType(schema).fromBuffer(encode(schema, record)));
}

function accessRow(i: number): Row {
  return {
    ...decodedRow(accessV2, accessRecord(i, { latency_ms: i % 2 ? null : { double: i / 8 } })),
    _message_id: `m-${i}`,
    _publish_time: '2025-11-24T16:00:00.000000Z',
  };
}

interface InsertRow {
  insertId: string;
  json: Row;
}

/** A write of rows as the route makes it: each prepared by the sink, then sent. */
async function insert(s: DuckDbSink, table: TableRef, batch: InsertRow[]): Promise<{ failures: RowFailure[] }> {
  const outcome = await s.write(
    table,
    batch.map((r) => s.prepare(r.insertId, r.json)),
  );
  return { failures: [...outcome.failures] };
}

function rows(from: number, to: number): InsertRow[] {
  return Array.from({ length: to - from }, (_, k) => ({ insertId: `m-${from + k}`, json: accessRow(from + k) }));
}

describe('DuckDB sink (a real DuckDB file)', () => {
  let dir: string;
  let sink: DuckDbSink | undefined;

  async function open(extraYaml = ''): Promise<DuckDbSink> {
    await writeFile(join(dir, 'access.avsc'), JSON.stringify(accessV2));
    await writeFile(join(dir, 'types.json'), JSON.stringify({ fields: typesSchema }));
    const config = parseConfig(
      `
projectId: test-project
subscription: logs
deadLetter: { topic: dl }
sink: duckdb
duckdb:
  path: ${join(dir, 'db', 'test.duckdb')}
  tables: { access: ${join(dir, 'access.avsc')}, types: ${join(dir, 'types.json')} }
routes:
  access: { match: [access], table: logs.access, metadata: { messageId: _message_id, publishTime: _publish_time } }
  types: { match: [types], table: logs.types }
${extraYaml}`,
      {},
    );
    sink = await createDuckDbSink(config);
    return sink;
  }

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'tributary-duckdb-'));
  });

  afterEach(async () => {
    await sink?.close();
    sink = undefined;
    await rm(dir, { recursive: true, force: true });
  });

  it('creates the table from the Avro schema and reports it in BigQuery shape, so pre-validation works', async () => {
    const s = await open();
    const schema = await s.getTableSchema(ACCESS);
    expect(schema.fields).toEqual([...bigQueryFieldsFor(accessV2), ...METADATA_FIELDS]);
    const validator = createRowValidator(schema, { unknownFields: 'dead-letter' });
    expect(validator.validate(accessRow(1)).ok).toBe(true);
    // headers is a REPEATED RECORD whose key is REQUIRED: DuckDB cannot say so, the schema does.
    const bad = { ...accessRow(2), headers: [{ key: null, value: 'x' }] };
    expect(validator.validate(bad)).toMatchObject({ ok: false, code: 'ROW_INVALID', field: 'headers[0].key' });
    expect(validator.validate({ ...accessRow(3), nope: 1 })).toMatchObject({ ok: false, code: 'UNKNOWN_FIELD' });
    const columns = await s.query(`SELECT column_name, data_type FROM duckdb_columns() WHERE table_name = 'access' ORDER BY column_index`);
    expect(columns.map((c) => `${String(c.column_name)} ${String(c.data_type)}`)).toContain('ts TIMESTAMP WITH TIME ZONE');
  });

  it('lands converted Avro rows with exact values', async () => {
    const s = await open();
    expect(await insert(s, ACCESS, rows(0, 50))).toEqual({ failures: [] });
    const [first] = await s.query(
      `SELECT ts::VARCHAR AS ts, method, status, bytes, user_agent, headers, tags, latency_ms, _message_id, _publish_time::VARCHAR AS pt FROM logs.access WHERE _message_id = 'm-3'`,
    );
    expect(first).toEqual({
      ts: '2025-11-24 16:00:00.000003+00',
      method: 'POST',
      status: '203',
      bytes: '1003',
      user_agent: null,
      headers: [
        { key: 'host', value: 'example.com' },
        { key: 'x-request-id', value: 'req-3' },
      ],
      tags: ['edge', 'shard-3'],
      latency_ms: null,
      _message_id: 'm-3',
      pt: '2025-11-24 16:00:00+00',
    });
    expect(await s.query('SELECT count(*)::INTEGER AS n FROM logs.access')).toEqual([{ n: 50 }]);
  });

  it('maps every BigQuery type, nested too', async () => {
    const s = await open();
    const row: Row = {
      id: 'a',
      n: '9223372036854775807',
      f: 'NaN',
      ok: true,
      b: Buffer.from([0, 1, 255]).toString('base64'),
      amount: '-1234567890.12',
      huge: '12345678901234567890123456789012345678901234567890.0123456789',
      at: '0001-01-01T00:00:00.000000Z',
      local: '9999-12-31T23:59:59.999999',
      day: '2024-02-29',
      clock: '23:59:59.999999',
      nested: [{ k: 'x', when: '2025-01-01T00:00:00.5Z', raw: [Buffer.from('hi').toString('base64')] }],
    };
    expect(await insert(s, TYPES, [{ insertId: '1', json: row }])).toEqual({ failures: [] });
    const [stored] = await s.query(
      `SELECT n::VARCHAR AS n, isnan(f) AS nan, ok, hex(b) AS b, amount::VARCHAR AS amount, huge, "at"::VARCHAR AS "at", local::VARCHAR AS local,
              day::VARCHAR AS day, clock::VARCHAR AS clock, nested[1].k AS k, nested[1].when::VARCHAR AS w, decode(nested[1].raw[1]) AS raw FROM logs.types`,
    );
    expect(stored).toEqual({
      n: '9223372036854775807',
      nan: true,
      ok: true,
      b: '0001FF',
      amount: '-1234567890.12',
      huge: row.huge,
      at: '0001-01-01 00:00:00+00',
      local: '9999-12-31 23:59:59.999999',
      day: '2024-02-29',
      clock: '23:59:59.999999',
      k: 'x',
      w: '2025-01-01 00:00:00.5+00',
      raw: 'hi',
    });
    const schema = await s.getTableSchema(TYPES);
    expect(schema.fields).toEqual(typesSchema);
  });

  it('a row DuckDB rejects is invalid alone; the rest of the batch lands', async () => {
    const s = await open();
    const batch: InsertRow[] = [
      { insertId: 't1', json: { id: 'ok-1', n: 1 } },
      { insertId: 't2', json: { id: null, n: 2 } },
      { insertId: 't3', json: { id: 'ok-3', day: '2024-02-30' } },
      { insertId: 't4', json: { id: 'ok-4', amount: '12345678901.5' } },
      { insertId: 't5', json: { id: 'ok-5', nope: 1 } },
      { insertId: 't6', json: { id: 'ok-6', n: 'x' } },
      { insertId: 't7', json: { id: 'ok-7', nested: [{ k: 'k', when: 'yesterday' }] } },
      { insertId: 't8', json: { id: 'ok-8' } },
    ];
    const { failures } = await insert(s, TYPES, batch);
    expect(failures.map((f) => [f.index, f.kind])).toEqual([
      [1, 'rejected'],
      [2, 'rejected'],
      [3, 'rejected'],
      [4, 'rejected'],
      [5, 'rejected'],
      [6, 'rejected'],
    ]);
    expect(failures[0]).toMatchObject({ code: 'BIGQUERY_ROW_INVALID', reason: expect.stringMatching(/field "id": .*NOT NULL/) });
    expect(failures.find((f) => f.index === 4)).toMatchObject({ reason: expect.stringMatching(/no such field: nope/), staleSchema: true });
    expect(await s.query('SELECT id FROM logs.types ORDER BY id')).toEqual([{ id: 'ok-1' }, { id: 'ok-8' }]);
  });

  it('deduplicates a resend of the same insertIds, also across a restart', async () => {
    let s = await open();
    await insert(s, ACCESS, rows(0, 10));
    expect(await insert(s, ACCESS, rows(5, 15))).toEqual({ failures: [] });
    const twice = rows(20, 21);
    expect(await insert(s, ACCESS, [...twice, ...twice])).toEqual({ failures: [] });
    await s.close();
    s = await open();
    await insert(s, ACCESS, rows(0, 25));
    const counted = await s.query('SELECT count(*)::INTEGER AS n, count(DISTINCT _message_id)::INTEGER AS d FROM logs.access');
    expect(counted).toEqual([{ n: 25, d: 25 }]);
  });

  it('a missing table is TABLE_NOT_FOUND (the route pauses), not a data error', async () => {
    const s = await open();
    const missing: TableRef = { projectId: 'test-project', datasetId: 'logs', tableId: 'missing' };
    await expect(s.getTableSchema(missing)).rejects.toMatchObject({ code: 'TABLE_NOT_FOUND' });
    const err: unknown = await insert(s, missing, rows(0, 1)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TributaryError);
    expect((err as TributaryError).code).toBe('TABLE_NOT_FOUND');
  });

  it('reads the schema of a table created outside tributary from its DuckDB types', async () => {
    const s = await open();
    await s.query(
      `CREATE TABLE logs.external (id BIGINT NOT NULL, name VARCHAR, price DECIMAL(10, 3), "at" TIMESTAMPTZ, seen TIMESTAMP, tags VARCHAR[],
        attrs MAP(VARCHAR, INTEGER), point STRUCT("x y" DOUBLE, "select" BLOB), wide DECIMAL(38, 20), grid INTEGER[][])`,
    );
    const schema = await s.getTableSchema({ projectId: 'p-1234', datasetId: 'logs', tableId: 'external' });
    expect(schema.fields).toEqual([
      { name: 'id', type: 'INTEGER', mode: 'REQUIRED' },
      { name: 'name', type: 'STRING', mode: 'NULLABLE' },
      { name: 'price', type: 'NUMERIC', mode: 'NULLABLE', precision: '10', scale: '3' },
      { name: 'at', type: 'TIMESTAMP', mode: 'NULLABLE' },
      { name: 'seen', type: 'DATETIME', mode: 'NULLABLE' },
      { name: 'tags', type: 'STRING', mode: 'REPEATED' },
      {
        name: 'attrs',
        type: 'RECORD',
        mode: 'REPEATED',
        fields: [
          { name: 'key', type: 'STRING', mode: 'REQUIRED' },
          { name: 'value', type: 'INTEGER', mode: 'NULLABLE' },
        ],
      },
      {
        name: 'point',
        type: 'RECORD',
        mode: 'NULLABLE',
        fields: [
          { name: 'x y', type: 'FLOAT', mode: 'NULLABLE' },
          { name: 'select', type: 'BYTES', mode: 'NULLABLE' },
        ],
      },
      { name: 'wide', type: 'BIGNUMERIC', mode: 'NULLABLE', precision: '38', scale: '20' },
      { name: 'grid', type: 'RECORD', mode: 'REPEATED', fields: [{ name: 'value', type: 'INTEGER', mode: 'REPEATED' }] },
    ]);
    expect(parseDuckType("ENUM('a', 'b')[]")).toEqual({ kind: 'list', item: { kind: 'scalar', name: 'ENUM' } });
    const { failures } = await insert(s, { projectId: 'p-1234', datasetId: 'logs', tableId: 'external' }, [
      { insertId: 'e1', json: { id: 1, tags: ['a'], attrs: [{ key: 'k', value: 7 }], point: { 'x y': 1.5, select: null } } },
    ]);
    expect(failures).toEqual([]);
    expect(await s.query(`SELECT attrs['k'] AS k FROM logs.external`)).toEqual([{ k: 7 }]);
  });

  it('follows a column added to the table once the schema is read again', async () => {
    const s = await open();
    await insert(s, TYPES, [{ insertId: 'c1', json: { id: 'before' } }]);
    await s.query('ALTER TABLE logs.types ADD COLUMN extra VARCHAR');
    expect((await insert(s, TYPES, [{ insertId: 'c2', json: { id: 'early', extra: 'x' } }])).failures[0]).toMatchObject({
      reason: expect.stringMatching(/no such field: extra/),
    });
    expect((await s.getTableSchema(TYPES)).fields.at(-1)).toEqual({ name: 'extra', type: 'STRING', mode: 'NULLABLE' });
    expect(await insert(s, TYPES, [{ insertId: 'c3', json: { id: 'after', extra: 'x' } }])).toEqual({ failures: [] });
  });

  it('says in one line what is wrong when the module, the file or a table definition is unusable', async () => {
    const missing = await DuckDbSink.open({
      path: join(dir, 'x.duckdb'),
      definitions: [],
      loadModule: () => import(['@duckdb', 'not-installed'].join('/')),
    }).catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(DuckDbUnavailableError);
    expect((missing as Error).message).toMatch(
      /^sink: duckdb needs the optional dependency @duckdb\/node-api, which cannot be loaded .*npm install @duckdb\/node-api$/,
    );
    expect((missing as Error).message).not.toContain('\n');

    await writeFile(join(dir, 'metric.avsc'), JSON.stringify({ ...metric, type: 'enum' }));
    const config = parseConfig(
      `projectId: test-project\nsubscription: s1\ndeadLetter: { topic: dl }\nsink: duckdb\nduckdb: { path: ${join(dir, 'y.duckdb')}, tables: { metric: ${join(dir, 'nothing.avsc')} } }\nroutes:\n  metric: { match: [metric], table: logs.metric }\n`,
      {},
    );
    const unreadable = await createDuckDbSink(config).catch((e: unknown) => e);
    expect(unreadable).toBeInstanceOf(DuckDbUnavailableError);
    expect((unreadable as Error).message).toMatch(/duckdb\.tables\.metric: cannot read .*nothing\.avsc \(ENOENT\)/);

    sink = await open();
    const locked = await DuckDbSink.open({
      path: ':memory:',
      definitions: [{ route: 'x', table: ACCESS, source: 'inline', schema: { fields: [{ name: 'a', type: 'RECORD', fields: [] }] } }],
    }).catch((e: unknown) => e);
    expect(locked).toBeInstanceOf(DuckDbUnavailableError);
  });

  it('evolves like BigQuery: ADD COLUMN for new columns and struct fields at any depth, DROP NOT NULL for relaxed ones', async () => {
    const s = await open();
    const accessV3 = { ...accessV2, fields: [...accessV2.fields, { name: 'region', type: ['null', 'string'], default: null }] } as unknown as AvroSchema;
    const { diff } = await s.evolve(ACCESS, 'v3', routeTableFields(accessV3, { messageId: '_message_id', publishTime: '_publish_time' }));
    expect(diff.additions.map((a) => a.path)).toEqual(['region']);
    const v3Row = {
      ...decodedRow(accessV3, { ...accessRecord(9, { latency_ms: null }), region: { string: 'eu-west1' } }),
      _message_id: 'm-9',
      _publish_time: '2025-11-24T16:00:00.000000Z',
    };
    expect(await insert(s, ACCESS, [{ insertId: 'm-9', json: v3Row }])).toEqual({ failures: [] });
    expect(await s.query(`SELECT region FROM logs.access WHERE _message_id = 'm-9'`)).toEqual([{ region: 'eu-west1' }]);

    const before = await s.getTableSchema(TYPES);
    const desired: TableField[] = [
      ...typesSchema.map((f): TableField => {
        if (f.name === 'id') return { ...f, mode: 'NULLABLE' };
        if (f.name === 'nested')
          return {
            ...f,
            fields: [
              ...(f.fields ?? []),
              { name: 'note', type: 'STRING', mode: 'REQUIRED' },
              { name: 'deep', type: 'RECORD', fields: [{ name: 'x', type: 'INT64' }] },
            ],
          };
        return f;
      }),
      { name: 'geo', type: 'RECORD', mode: 'REQUIRED', fields: [{ name: 'lat', type: 'FLOAT64', mode: 'REQUIRED' }] },
      { name: 'labels', type: 'STRING', mode: 'REPEATED' },
    ];
    const evolution = await s.evolve(TYPES, 'types-2', desired);
    const typesDiff = evolution.diff;
    expect(evolution.changed).toBe(true);
    expect(typesDiff.additions.map((a) => a.path)).toEqual(['nested.note', 'nested.deep', 'geo', 'labels']);
    expect(typesDiff.relaxations.map((r) => r.path)).toEqual(['id']);
    const after = await s.getTableSchema(TYPES);
    expect(after).toEqual(typesDiff.patched);
    expect(after.fields.slice(0, before.fields.length).map((f) => f.name)).toEqual(before.fields.map((f) => f.name));
    // Nothing left to do, and the same columns read back from the file.
    expect(await s.evolve(TYPES, 'types-2', desired)).toBe(evolution);
    expect(await s.evolve(TYPES, 'types-2-again', desired)).toMatchObject({ changed: false, diff: { additions: [], relaxations: [] } });

    expect(
      await insert(s, TYPES, [
        { insertId: 'e1', json: { id: null, nested: [{ k: 'k', note: 'n', deep: { x: 5 } }], geo: { lat: 1.5 }, labels: ['a', 'b'] } },
        { insertId: 'e2', json: { id: 'old-shape' } },
      ]),
    ).toEqual({ failures: [] });
    const landed = await s.query(
      `SELECT id, nested[1].note AS note, nested[1].deep.x::INTEGER AS x, geo.lat AS lat, labels FROM logs.types ORDER BY id NULLS FIRST`,
    );
    expect(landed).toEqual([
      { id: null, note: 'n', x: 5, lat: 1.5, labels: ['a', 'b'] },
      { id: 'old-shape', note: null, x: null, lat: null, labels: [] },
    ]);
  });

  it('creates a missing table from the columns of the first schema, once', async () => {
    const s = await open();
    const EVENTS: TableRef = { projectId: 'test-project', datasetId: 'events', tableId: 'first' };
    const fields: TableField[] = [
      { name: 'id', type: 'STRING', mode: 'REQUIRED' },
      { name: 'meta', type: 'RECORD', fields: [{ name: 'k', type: 'STRING', mode: 'REQUIRED' }] },
    ];
    expect(await s.createTable(EVENTS, fields, { partitioning: { type: 'DAY' } })).toBe('created');
    expect(await s.createTable(EVENTS, fields)).toBe('exists');
    expect(await s.getTableSchema(EVENTS)).toEqual({ fields });
    expect(await insert(s, EVENTS, [{ insertId: 'x', json: { id: 'a', meta: { k: 'v' } } }])).toEqual({ failures: [] });
  });

  it('refuses an incompatible change without altering the table', async () => {
    const s = await open();
    const before = await s.getTableSchema(TYPES);
    const desired = typesSchema.map((f): TableField => (f.name === 'n' ? { ...f, type: 'STRING' } : f));
    const error = await s.evolve(TYPES, 'types-bad', [...desired, { name: 'extra', type: 'STRING' }]).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TributaryError);
    expect((error as TributaryError).code).toBe('SCHEMA_INCOMPATIBLE');
    expect((error as TributaryError).message).toContain('field "n" is INT64 in the table but STRING in the record');
    expect(await s.getTableSchema(TYPES)).toEqual(before);
  });
});
