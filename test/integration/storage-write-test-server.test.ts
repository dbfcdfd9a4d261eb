import { createRequire } from 'node:module';
import { adapt, managedwriter } from '@google-cloud/bigquery-storage';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { TableRef, TableSchema } from '../../src/core/table-schema.js';
import { startBigQueryTestServer, type BigQueryTestServer } from '../support/bigquery-test-server.js';
import { startStorageWriteTestServer, type StorageWriteTestServer } from '../support/storage-write-test-server.js';

/*
 * The Storage Write test server, driven by Google's own managed writer (JSONWriter over a
 * descriptor from the client's adapt helpers), not by our sink: the server is checked against the
 * client that production code talks through.
 */

process.env['METADATA_SERVER_DETECTION'] = 'none';

const require = createRequire(import.meta.url);
const gax = createRequire(require.resolve('@google-cloud/bigquery-storage'))('google-gax') as {
  grpc: { credentials: { createInsecure(): unknown } };
};

const PROJECT = 'test-project';
const TABLE: TableRef = { projectId: PROJECT, datasetId: 'logs', tableId: 'events' };
const DEST = `projects/${PROJECT}/datasets/logs/tables/events`;
const SCHEMA: TableSchema = {
  fields: [
    { name: 'id', type: 'STRING', mode: 'REQUIRED' },
    { name: 'n', type: 'INTEGER' },
    { name: 'ts', type: 'TIMESTAMP' },
    { name: 'tags', type: 'STRING', mode: 'REPEATED' },
    { name: 'src', type: 'RECORD', fields: [{ name: 'host', type: 'STRING' }] },
  ],
};

let rest: BigQueryTestServer;
let storage: StorageWriteTestServer;
let client: managedwriter.WriterClient;
const opened: managedwriter.JSONWriter[] = [];

beforeAll(async () => {
  rest = await startBigQueryTestServer();
  storage = await startStorageWriteTestServer({ tables: rest });
  client = new managedwriter.WriterClient({
    projectId: PROJECT,
    apiEndpoint: '127.0.0.1',
    port: storage.port,
    sslCreds: gax.grpc.credentials.createInsecure() as never,
  });
});

afterAll(async () => {
  client.close();
  await storage.close();
  await rest.close();
});

beforeEach(() => {
  rest.createTable(TABLE, SCHEMA);
});

afterEach(() => {
  for (const w of opened.splice(0)) w.close();
  storage.resetFaults();
  storage.clearRequests();
  rest.deleteTable(TABLE);
});

/** A JSONWriter on the table's default stream, with a descriptor for `schema`. */
async function jsonWriter(schema: TableSchema = SCHEMA): Promise<{ writer: managedwriter.JSONWriter; errors: Error[] }> {
  const storageSchema = adapt.convertBigQuerySchemaToStorageTableSchema(schema as never);
  const descriptor = adapt.convertStorageSchemaToProto2Descriptor(storageSchema, 'root');
  const connection = await client.createStreamConnection({ streamId: managedwriter.DefaultStream, destinationTable: DEST });
  const errors: Error[] = [];
  connection.onConnectionError((err) => errors.push(err));
  const writer = new managedwriter.JSONWriter({ connection, protoDescriptor: descriptor });
  opened.push(writer);
  return { writer, errors };
}

describe('Storage Write test server, driven by the managed writer', () => {
  it('stores appended rows in the shared table store, in the shape insertAll rows have', async () => {
    const { writer } = await jsonWriter();
    const result = await writer
      .appendRows([
        { id: 'a', n: '9007199254740993', ts: '1700000000123456', tags: ['x', 'y'], src: { host: 'h1' } },
        { id: 'b', n: 7 },
      ])
      .getResult();
    expect(result.error ?? null).toBeNull();
    expect(result.rowErrors ?? []).toEqual([]);
    expect(rest.rows(TABLE).map((r) => r.json)).toEqual([
      { id: 'a', n: '9007199254740993', ts: '2023-11-14T22:13:20.123456Z', tags: ['x', 'y'], src: { host: 'h1' } },
      { id: 'b', n: 7, ts: null, tags: [], src: null },
    ]);
    expect(storage.requests.at(-1)?.storedRowCount).toBe(2);
  });

  it('answers GetWriteStream with the table schema, NOT_FOUND for a missing table', async () => {
    const stream = await client.getWriteStream({ streamId: `${DEST}/streams/_default`, view: 'FULL' as never });
    expect(stream.tableSchema?.fields?.map((f) => [f.name, f.type, f.mode])).toEqual([
      ['id', 'STRING', 'REQUIRED'],
      ['n', 'INT64', 'NULLABLE'],
      ['ts', 'TIMESTAMP', 'NULLABLE'],
      ['tags', 'STRING', 'REPEATED'],
      ['src', 'STRUCT', 'NULLABLE'],
    ]);
    await expect(client.getWriteStream({ streamId: `projects/${PROJECT}/datasets/logs/tables/missing/streams/_default` })).rejects.toMatchObject({ code: 5 });
  });

  it('rejects a request with invalid rows as a whole: row_errors with index, nothing stored', async () => {
    const { writer } = await jsonWriter();
    const result = await writer.appendRows([{ id: 'ok', n: 1 }, { n: 2 }, { id: 'ok2', ts: '-62135596800000001' }]).getResult();
    expect(result.error?.code).toBe(3);
    expect(result.rowErrors?.map((e) => Number(e.index))).toEqual([1, 2]);
    expect(result.rowErrors?.[0]?.message).toContain('Missing required field: id');
    expect(result.rowErrors?.[1]?.message).toContain('out of range');
    expect(String(result.rowErrors?.[0]?.code)).toBe('FIELDS_ERROR');
    expect(rest.rows(TABLE)).toEqual([]);
  });

  it('closes the stream with INVALID_ARGUMENT when the writer schema has a field the table lacks', async () => {
    const { writer, errors } = await jsonWriter({ fields: [...SCHEMA.fields, { name: 'extra', type: 'STRING' }] });
    await expect(writer.appendRows([{ id: 'a', extra: 'x' }]).getResult()).rejects.toMatchObject({ code: 3 });
    expect(errors.map((e) => e.message).join()).toContain('Input schema has more fields than BigQuery schema');
    expect(rest.rows(TABLE)).toEqual([]);
  });

  it('reports an updated table schema in responses once the table gained a column', async () => {
    const { writer } = await jsonWriter();
    await writer.appendRows([{ id: 'before' }]).getResult();
    rest.setSchema(TABLE, { fields: [...SCHEMA.fields, { name: 'added', type: 'STRING' }] });
    const result = await writer.appendRows([{ id: 'after' }]).getResult();
    expect(result.updatedSchema?.fields?.map((f) => f.name)).toContain('added');
    expect(storage.requests.map((r) => r.updatedSchema)).toEqual([false, true]);
  });

  it('injects append errors in the response and keeps the stream open', async () => {
    const { writer } = await jsonWriter();
    storage.failNext(1, { code: 14 });
    storage.failNext(1, { code: 8, message: 'quota' });
    // The managed writer turns a retryable code in an answer into a rejection (its retries are off).
    await expect(writer.appendRows([{ id: 'a' }]).getResult()).rejects.toMatchObject({ code: 14 });
    expect((await writer.appendRows([{ id: 'b' }]).getResult()).error?.code).toBe(8);
    expect((await writer.appendRows([{ id: 'c' }]).getResult()).error ?? null).toBeNull();
    expect(rest.rows(TABLE).map((r) => r.json['id'])).toEqual(['c']);
    expect(new Set(storage.requests.map((r) => r.connection)).size).toBe(1);
  });

  it('answers NOT_FOUND for a table that does not exist and PERMISSION_DENIED on demand', async () => {
    rest.deleteTable(TABLE);
    const { writer } = await jsonWriter();
    expect((await writer.appendRows([{ id: 'a' }]).getResult()).error?.code).toBe(5);
    rest.createTable(TABLE, SCHEMA);
    storage.failNext(1, { code: 7, message: 'Permission denied' });
    expect((await writer.appendRows([{ id: 'a' }]).getResult()).error?.code).toBe(7);
  });

  it('closes the stream with a status, or breaks it without one, before or after storing', async () => {
    const first = await jsonWriter();
    storage.failNext(1, { code: 14, mode: 'stream' });
    await expect(first.writer.appendRows([{ id: 'a' }]).getResult()).rejects.toMatchObject({ code: 14 });
    expect(rest.rows(TABLE)).toEqual([]);

    const second = await jsonWriter();
    storage.breakNext(1, { afterCommit: true });
    await expect(second.writer.appendRows([{ id: 'stored-then-broken' }]).getResult()).rejects.toBeDefined();
    expect(rest.rows(TABLE).map((r) => r.json['id'])).toEqual(['stored-then-broken']);
    expect(storage.requests.at(-1)?.code).toBeNull();
  });

  it('delays answers when slowed down', async () => {
    const { writer } = await jsonWriter();
    storage.setLatency(300);
    const started = Date.now();
    await writer.appendRows([{ id: 'slow' }]).getResult();
    expect(Date.now() - started).toBeGreaterThanOrEqual(250);
  });

  it('refuses requests over the size limit with INVALID_ARGUMENT and no row errors', async () => {
    const small = await startStorageWriteTestServer({ tables: rest, maxRequestBytes: 2_000 });
    const smallClient = new managedwriter.WriterClient({
      projectId: PROJECT,
      apiEndpoint: '127.0.0.1',
      port: small.port,
      sslCreds: gax.grpc.credentials.createInsecure() as never,
    });
    try {
      const connection = await smallClient.createStreamConnection({ streamId: managedwriter.DefaultStream, destinationTable: DEST });
      connection.onConnectionError(() => undefined);
      const descriptor = adapt.convertStorageSchemaToProto2Descriptor(adapt.convertBigQuerySchemaToStorageTableSchema(SCHEMA as never), 'root');
      const writer = new managedwriter.JSONWriter({ connection, protoDescriptor: descriptor });
      const result = await writer.appendRows([{ id: 'x'.repeat(3_000) }]).getResult();
      expect(result.error?.code).toBe(3);
      expect(result.error?.message).toContain('too large');
      expect(result.rowErrors ?? []).toEqual([]);
      writer.close();
    } finally {
      smallClient.close();
      await small.close();
    }
  });
});
