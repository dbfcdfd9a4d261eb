import { gzipSync } from 'node:zlib';
import { BigQuery } from '@google-cloud/bigquery';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { TableRef, TableSchema } from '../../src/core/table-schema.js';
import { startBigQueryTestServer, type BigQueryTestServer, type BigQueryTestServerOptions, type Fault } from '../support/bigquery-test-server.js';

// No credentials here: stop google-auth-library probing the GCE metadata server.
process.env['METADATA_SERVER_DETECTION'] = 'none';

const PROJECT = 'test-project';
const DATASET = 'logs';
const EVENTS: TableRef = { projectId: PROJECT, datasetId: DATASET, tableId: 'events' };
const OTHER: TableRef = { projectId: PROJECT, datasetId: DATASET, tableId: 'other' };

const EVENTS_SCHEMA: TableSchema = {
  fields: [
    { name: 'id', type: 'STRING', mode: 'REQUIRED' },
    { name: 'count', type: 'INT64' },
    { name: 'tags', type: 'STRING', mode: 'REPEATED' },
    {
      name: 'source',
      type: 'STRUCT',
      fields: [
        { name: 'host', type: 'STRING' },
        { name: 'port', type: 'INTEGER' },
      ],
    },
  ],
};

const RAW = { raw: true, partialRetries: 0, skipInvalidRows: false, ignoreUnknownValues: false } as const;

/** What the client's ApiError / PartialFailureError / FetchError expose. */
interface ClientError {
  name: string;
  message: string;
  code?: number | string;
  errno?: string;
  type?: string;
  errors?: Array<{
    reason?: string;
    message?: string;
    domain?: string;
    row?: unknown;
    errors?: Array<{ reason?: string; message?: string; location?: string }>;
  }>;
  response?: {
    statusCode?: number;
    body?: unknown;
    insertErrors?: Array<{ index: number; errors: Array<{ reason: string; location: string; debugInfo: string; message: string }> }>;
  };
}

async function rejection(promise: Promise<unknown>): Promise<ClientError> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(Error);
    return error as ClientError;
  }
  throw new Error('expected the promise to reject');
}

function row(insertId: string, json: Record<string, unknown>): { insertId: string; json: Record<string, unknown> } {
  return { insertId, json };
}

let server: BigQueryTestServer;
let bigquery: BigQuery;

async function restart(options: BigQueryTestServerOptions = {}, clientTimeout?: number): Promise<void> {
  await server.close();
  server = await startBigQueryTestServer(options);
  server.createTable(EVENTS, EVENTS_SCHEMA);
  bigquery = client(clientTimeout);
}

function client(timeout?: number): BigQuery {
  return new BigQuery({
    apiEndpoint: server.url,
    projectId: PROJECT,
    autoRetry: false,
    ...(timeout === undefined ? {} : { timeout }),
  });
}

function events(bq: BigQuery = bigquery) {
  return bq.dataset(DATASET).table('events');
}

beforeEach(async () => {
  server = await startBigQueryTestServer({ port: 0 });
  server.createTable(EVENTS, EVENTS_SCHEMA);
  bigquery = client();
});

afterEach(async () => {
  await server.close();
});

describe('metadata endpoints', () => {
  it('creates datasets and tables through the real client and returns the schema', async () => {
    const [dataset] = await bigquery.createDataset('fresh');
    expect(dataset.id).toBe('fresh');
    const [table] = await dataset.createTable('t1', {
      schema: {
        fields: [
          { name: 'a', type: 'INT64', mode: 'REQUIRED' },
          { name: 'b', type: 'BOOL' },
        ],
      },
    });
    expect(table.id).toBe('t1');
    const [metadata] = await bigquery.dataset('fresh').table('t1').getMetadata();
    expect(metadata.kind).toBe('bigquery#table');
    expect(metadata.id).toBe(`${PROJECT}:fresh.t1`);
    expect(metadata.tableReference).toEqual({ projectId: PROJECT, datasetId: 'fresh', tableId: 't1' });
    // BigQuery answers with legacy type names.
    expect(metadata.schema).toEqual({
      fields: [
        { name: 'a', type: 'INTEGER', mode: 'REQUIRED' },
        { name: 'b', type: 'BOOLEAN' },
      ],
    });
    expect(server.hasTable({ projectId: PROJECT, datasetId: 'fresh', tableId: 't1' })).toBe(true);

    const [tables] = await bigquery.dataset('fresh').getTables();
    expect(tables.map((t) => t.id)).toEqual(['t1']);

    const duplicate = await rejection(bigquery.createDataset('fresh'));
    expect(duplicate.code).toBe(409);
    expect(duplicate.errors?.[0]?.reason).toBe('duplicate');
    const duplicateTable = await rejection(bigquery.dataset('fresh').createTable('t1', {}));
    expect(duplicateTable.code).toBe(409);
  });

  it('returns a programmatically created table with RECORD fields', async () => {
    const [metadata] = await events().getMetadata();
    const fields = (metadata.schema as TableSchema).fields;
    expect(fields.map((f) => [f.name, f.type, f.mode])).toEqual([
      ['id', 'STRING', 'REQUIRED'],
      ['count', 'INTEGER', undefined],
      ['tags', 'STRING', 'REPEATED'],
      ['source', 'RECORD', undefined],
    ]);
    expect(fields[3]?.fields?.map((f) => f.type)).toEqual(['STRING', 'INTEGER']);
  });

  it('answers 404 notFound for a missing table or dataset', async () => {
    const missingTable = await rejection(bigquery.dataset(DATASET).table('nope').getMetadata());
    expect(missingTable.code).toBe(404);
    expect(missingTable.errors?.[0]?.reason).toBe('notFound');
    expect(missingTable.message).toBe(`Not found: Table ${PROJECT}:${DATASET}.nope`);
    const missingDataset = await rejection(bigquery.dataset('nope').createTable('t', {}));
    expect(missingDataset.code).toBe(404);
    expect(missingDataset.message).toBe(`Not found: Dataset ${PROJECT}:nope`);
  });
});

describe('insertAll', () => {
  it('stores raw rows with their insertIds and records the request', async () => {
    const [response] = await events().insert(
      [row('a', { id: 'a', count: 1, tags: ['x'] }), row('b', { id: 'b', count: '2', source: { host: 'h', port: 80 } })],
      RAW,
    );
    expect(response).toEqual({ kind: 'bigquery#tableDataInsertAllResponse' });
    expect(server.rows(EVENTS)).toEqual([
      { insertId: 'a', json: { id: 'a', count: 1, tags: ['x'] } },
      { insertId: 'b', json: { id: 'b', count: '2', source: { host: 'h', port: 80 } } },
    ]);
    expect(server.requests).toHaveLength(1);
    expect(server.requests[0]).toMatchObject({
      table: EVENTS,
      insertIds: ['a', 'b'],
      rowCount: 2,
      status: 200,
      reason: null,
      storedRowCount: 2,
      skipInvalidRows: false,
      ignoreUnknownValues: false,
    });
    expect(typeof server.requests[0]?.timestamp).toBe('number');
    server.clearRequests();
    expect(server.requests).toHaveLength(0);
  });

  it('rejects the whole request when one row is invalid: invalid + stopped, nothing stored', async () => {
    const rows = [row('a', { id: 'a' }), row('b', { id: 'b', x: 1 }), row('c', { id: 'c' })];
    const error = await rejection(events().insert(rows, RAW));
    expect(error.name).toBe('PartialFailureError');
    expect(error.code).toBeUndefined();
    // err.errors: one entry per insertError, `row` is the very object passed in, no location.
    expect(error.errors).toHaveLength(3);
    const byRow = new Map(error.errors?.map((e) => [e.row, e.errors]));
    expect(byRow.get(rows[1])).toEqual([{ reason: 'invalid', message: 'no such field: x.' }]);
    expect(byRow.get(rows[0])).toEqual([{ reason: 'stopped', message: '' }]);
    expect(byRow.get(rows[2])).toEqual([{ reason: 'stopped', message: '' }]);
    // err.response is the parsed insertAll body, with indexes and locations.
    expect(error.response?.insertErrors).toEqual([
      { index: 0, errors: [{ reason: 'stopped', location: '', debugInfo: '', message: '' }] },
      { index: 1, errors: [{ reason: 'invalid', location: 'x', debugInfo: '', message: 'no such field: x.' }] },
      { index: 2, errors: [{ reason: 'stopped', location: '', debugInfo: '', message: '' }] },
    ]);
    expect(server.rows(EVENTS)).toEqual([]);
    expect(server.requests[0]).toMatchObject({ status: 200, storedRowCount: 0, insertErrorCount: 3 });
  });

  it('stores the valid rows with skipInvalidRows but still reports the invalid ones', async () => {
    const rows = [row('a', { id: 'a' }), row('b', { count: 1 }), row('c', { id: 'c' })];
    const error = await rejection(events().insert(rows, { ...RAW, skipInvalidRows: true }));
    expect(error.name).toBe('PartialFailureError');
    expect(error.response?.insertErrors).toEqual([
      { index: 1, errors: [{ reason: 'invalid', location: 'id', debugInfo: '', message: 'Missing required field: id.' }] },
    ]);
    expect(error.errors?.[0]?.row).toBe(rows[1]);
    expect(server.rows(EVENTS).map((r) => r.insertId)).toEqual(['a', 'c']);
  });

  it('drops unknown fields with ignoreUnknownValues', async () => {
    await events().insert([row('a', { id: 'a', extra: 1, source: { host: 'h', zone: 'z' } })], {
      ...RAW,
      ignoreUnknownValues: true,
    });
    expect(server.rows(EVENTS)).toEqual([{ insertId: 'a', json: { id: 'a', source: { host: 'h' } } }]);
  });

  it('deduplicates by insertId within the window', async () => {
    let clock = 1_000_000;
    await restart({ now: () => clock, dedupWindowMs: 60_000 });
    await events().insert([row('a', { id: 'a' }), row('b', { id: 'b' })], RAW);
    await events().insert([row('a', { id: 'a' }), row('c', { id: 'c' })], RAW);
    expect(server.rows(EVENTS).map((r) => r.insertId)).toEqual(['a', 'b', 'c']);
    expect(server.requests[1]).toMatchObject({ storedRowCount: 1, duplicateRowCount: 1, status: 200 });
    clock += 60_000;
    await events().insert([row('a', { id: 'a' })], RAW);
    expect(server.rows(EVENTS).map((r) => r.insertId)).toEqual(['a', 'b', 'c', 'a']);
  });

  it('validates modes, records and names like BigQuery', async () => {
    const rows = [
      row('0', { ID: 'upper-case name is the same column' }),
      row('1', { id: null }),
      row('2', { id: 'x', tags: 'not-an-array' }),
      row('3', { id: 'x', tags: ['a', null] }),
      row('4', { id: 'x', source: { host: 'h', bad: 1 } }),
      row('5', { id: 'x', source: 'not-a-record' }),
      row('6', { id: 'x', count: [1] }),
      row('7', { id: 'x', source: { port: 'eighty' } }),
      row('8', { id: 'x', tags: null, source: null, count: null }),
    ];
    const error = await rejection(events().insert(rows, { ...RAW, skipInvalidRows: true }));
    const invalid = error.response?.insertErrors ?? [];
    expect(invalid.map((e) => [e.index, e.errors[0]?.location])).toEqual([
      [1, 'id'],
      [2, 'tags'],
      [3, 'tags'],
      [4, 'source.bad'],
      [5, 'source'],
      [6, 'count'],
      [7, 'source.port'],
    ]);
    expect(invalid.every((e) => e.errors.every((x) => x.reason === 'invalid'))).toBe(true);
    expect(invalid[3]?.errors[0]?.message).toBe('no such field: source.bad.');
    expect(server.rows(EVENTS).map((r) => r.insertId)).toEqual(['0', '8']);
  });

  it('applies BigQuery JSON coercions per type', async () => {
    const cases: Array<[string, unknown, boolean]> = [
      ['INT64', 42, true],
      ['INT64', '-9223372036854775808', true],
      ['INT64', '9223372036854775808', false],
      ['INT64', 1.5, false],
      ['INT64', 'abc', false],
      ['FLOAT64', 1.5, true],
      ['FLOAT64', '2.5e3', true],
      ['FLOAT64', 'NaN', true],
      ['FLOAT64', '-Infinity', true],
      ['FLOAT64', 'fast', false],
      ['BOOL', true, true],
      ['BOOL', 'false', true],
      ['BOOL', 'yes', false],
      ['STRING', 'text', true],
      ['STRING', 12, true],
      ['STRING', { a: 1 }, false],
      ['BYTES', 'aGVsbG8=', true],
      ['BYTES', 'not base64!', false],
      ['TIMESTAMP', '2024-02-29T12:34:56.123456Z', true],
      ['TIMESTAMP', '2024-02-29 12:34:56+02:00', true],
      ['TIMESTAMP', 1_700_000_000.5, true],
      ['TIMESTAMP', '2023-02-29T00:00:00Z', false],
      ['TIMESTAMP', '10000-01-01T00:00:00Z', false],
      ['TIMESTAMP', 'yesterday', false],
      ['DATE', '2024-01-31', true],
      ['DATE', '0000-01-01', false],
      ['DATE', '2024-13-01', false],
      ['DATETIME', '2024-01-31T23:59:59.999999', true],
      ['DATETIME', '2024-01-31T23:59:59Z', false],
      ['TIME', '23:59:59.5', true],
      ['TIME', '24:00:00', false],
      ['NUMERIC', '12345678901234567890123456789.123456789', true],
      ['NUMERIC', '123456789012345678901234567890', false],
      ['NUMERIC', '0.1234567891', false],
      ['NUMERIC', 3.25, true],
      ['BIGNUMERIC', '0.12345678901234567890123456789012345678', true],
      ['JSON', '{"a":[1,2]}', true],
      ['JSON', { a: 1 }, true],
      ['JSON', '{broken', false],
      ['GEOGRAPHY', 'POINT(1 2)', true],
    ];
    const types = [...new Set(cases.map(([type]) => type))];
    const column = (type: string): string => `c_${type.toLowerCase()}`;
    const ref: TableRef = { projectId: PROJECT, datasetId: DATASET, tableId: 'types' };
    server.createTable(ref, { fields: types.map((type) => ({ name: column(type), type })) });
    const rows = cases.map(([type, value], i) => row(`r${i}`, { [column(type)]: value }));
    const error = await rejection(
      bigquery
        .dataset(DATASET)
        .table('types')
        .insert(rows, { ...RAW, skipInvalidRows: true }),
    );
    const invalidIndexes = (error.response?.insertErrors ?? []).map((e) => e.index);
    const expected = cases.flatMap(([, , valid], i) => (valid ? [] : [i]));
    expect(invalidIndexes.map((i) => cases[i])).toEqual(expected.map((i) => cases[i]));
    expect(server.rows(ref)).toHaveLength(cases.length - expected.length);
  });
});

describe('HTTP-level limits and parsing', () => {
  it('answers 400 badRequest above the payload limit and 413 HTML far above it', async () => {
    await restart({ maxRequestBytes: 2_000, frontendMaxRequestBytes: 20_000 });
    const big = (bytes: number) => [row('a', { id: 'x'.repeat(bytes) })];
    const tooBig = await rejection(events().insert(big(5_000), RAW));
    expect(tooBig.code).toBe(400);
    expect(tooBig.errors?.[0]?.reason).toBe('badRequest');
    expect(tooBig.message).toBe('Request payload size exceeds the limit: 2000 bytes.');
    const wayTooBig = await rejection(events().insert(big(50_000), RAW));
    expect(wayTooBig.code).toBe(413);
    expect(wayTooBig.errors).toEqual([]);
    expect(server.rows(EVENTS)).toEqual([]);
  });

  it('answers 400 invalid above the row-count limit', async () => {
    await restart({ maxRowsPerRequest: 3 });
    const rows = [1, 2, 3, 4].map((i) => row(`r${i}`, { id: `r${i}` }));
    const error = await rejection(events().insert(rows, RAW));
    expect(error.code).toBe(400);
    expect(error.errors?.[0]?.reason).toBe('invalid');
    expect(error.message).toBe('too many rows present in the request, limit: 3 row count: 4.');
  });

  it('answers 400 parseError to malformed JSON and accepts gzip bodies', async () => {
    const url = `${server.url}/bigquery/v2/projects/${PROJECT}/datasets/${DATASET}/tables/events/insertAll`;
    const malformed = await fetch(url, { method: 'POST', body: '{"rows": [', headers: { 'content-type': 'application/json' } });
    expect(malformed.status).toBe(400);
    const body = (await malformed.json()) as { error: { code: number; status: string; errors: Array<{ reason: string }> } };
    expect(body.error.code).toBe(400);
    expect(body.error.status).toBe('INVALID_ARGUMENT');
    expect(body.error.errors[0]?.reason).toBe('parseError');

    const gzipped = await fetch(url, {
      method: 'POST',
      body: gzipSync(JSON.stringify({ rows: [{ insertId: 'g', json: { id: 'g' } }] })),
      headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' },
    });
    expect(gzipped.status).toBe(200);
    expect(server.rows(EVENTS)).toEqual([{ insertId: 'g', json: { id: 'g' } }]);
  });
});

describe('fault injection', () => {
  const faults: Array<[Fault, string]> = [
    [{ status: 503, reason: 'backendError' }, 'UNAVAILABLE'],
    [{ status: 500, reason: 'internalError' }, 'INTERNAL'],
    [{ status: 429, reason: 'rateLimitExceeded' }, 'RESOURCE_EXHAUSTED'],
    [{ status: 403, reason: 'quotaExceeded' }, 'PERMISSION_DENIED'],
    [{ status: 403, reason: 'accessDenied' }, 'PERMISSION_DENIED'],
    [{ status: 404, reason: 'notFound' }, 'NOT_FOUND'],
  ];

  it.each(faults)('failNext %j surfaces as ApiError with code and reason', async (fault, statusName) => {
    server.failNext(1, fault);
    const error = await rejection(events().insert([row('a', { id: 'a' })], RAW));
    expect(error.name).toBe('Error');
    expect(error.code).toBe(fault.status);
    expect(error.errors).toHaveLength(1);
    expect(error.errors?.[0]).toMatchObject({ reason: fault.reason, domain: 'global' });
    expect(error.response?.statusCode).toBe(fault.status);
    // On errors response.body is the raw JSON text.
    expect(typeof error.response?.body).toBe('string');
    expect(JSON.parse(String(error.response?.body))).toEqual({
      error: {
        code: fault.status,
        message: error.message,
        errors: [{ message: error.message, domain: 'global', reason: fault.reason }],
        status: statusName,
      },
    });
    expect(server.rows(EVENTS)).toEqual([]);
    expect(server.requests[0]).toMatchObject({ status: fault.status, reason: fault.reason, injected: true });
    // Only the next request failed.
    await events().insert([row('a', { id: 'a' })], RAW);
    expect(server.rows(EVENTS)).toHaveLength(1);
  });

  it('failNext counts requests and can target one table', async () => {
    server.createTable(OTHER, { fields: [{ name: 'id', type: 'STRING' }] });
    server.failNext(2, { status: 503, reason: 'backendError' }, { table: OTHER });
    await events().insert([row('a', { id: 'a' })], RAW);
    const other = bigquery.dataset(DATASET).table('other');
    expect((await rejection(other.insert([row('o1', { id: 'o1' })], RAW))).code).toBe(503);
    expect((await rejection(other.insert([row('o1', { id: 'o1' })], RAW))).code).toBe(503);
    await other.insert([row('o1', { id: 'o1' })], RAW);
    expect(server.rows(OTHER)).toHaveLength(1);
    expect(server.requests.map((r) => r.status)).toEqual([200, 503, 503, 200]);
  });

  it('setOutage fails every request until cleared; failUntil ends on its own', async () => {
    server.setOutage({ status: 503, reason: 'backendError' });
    for (let i = 0; i < 3; i += 1) {
      expect((await rejection(events().insert([row('a', { id: 'a' })], RAW))).code).toBe(503);
    }
    server.setOutage(null);
    await events().insert([row('a', { id: 'a' })], RAW);

    let healed = false;
    server.failUntil(() => healed, { status: 500, reason: 'internalError' });
    expect((await rejection(events().insert([row('b', { id: 'b' })], RAW))).errors?.[0]?.reason).toBe('internalError');
    healed = true;
    await events().insert([row('b', { id: 'b' })], RAW);
    expect(server.rows(EVENTS).map((r) => r.insertId)).toEqual(['a', 'b']);
  });

  it('rowFault reports transient per-row errors and stores the other rows', async () => {
    server.rowFault((r) => (r.insertId === 'b' ? 'backendError' : r.insertId === 'c' ? 'timeout' : null));
    const rows = [row('a', { id: 'a' }), row('b', { id: 'b' }), row('c', { id: 'c' }), row('d', { id: 'd' })];
    const error = await rejection(events().insert(rows, RAW));
    expect(error.name).toBe('PartialFailureError');
    expect(error.errors?.map((e) => [e.row, e.errors?.[0]?.reason])).toEqual([
      [rows[1], 'backendError'],
      [rows[2], 'timeout'],
    ]);
    expect(server.rows(EVENTS).map((r) => r.insertId)).toEqual(['a', 'd']);
    server.rowFault(null);
    await events().insert([rows[1], rows[2]], RAW);
    expect(server.rows(EVENTS).map((r) => r.insertId)).toEqual(['a', 'd', 'b', 'c']);
  });

  it('dropNext destroys the connection: FetchError ECONNRESET, nothing stored', async () => {
    server.dropNext(1);
    const error = await rejection(events().insert([row('a', { id: 'a' })], RAW));
    expect(error.name).toBe('FetchError');
    expect(error.code).toBe('ECONNRESET');
    expect(error.errno).toBe('ECONNRESET');
    expect(error.type).toBe('system');
    expect(error.response).toBeUndefined();
    expect(server.rows(EVENTS)).toEqual([]);
    expect(server.requests[0]).toMatchObject({ status: null, injected: true, insertIds: ['a'] });
    await events().insert([row('a', { id: 'a' })], RAW);
    expect(server.rows(EVENTS)).toHaveLength(1);
  });

  it('dropNext afterCommit stores the rows, then drops; the retry is deduplicated', async () => {
    server.dropNext(1, { afterCommit: true });
    const error = await rejection(events().insert([row('a', { id: 'a' })], RAW));
    expect(error.code).toBe('ECONNRESET');
    expect(server.rows(EVENTS)).toHaveLength(1);
    await events().insert([row('a', { id: 'a' })], RAW);
    expect(server.rows(EVENTS)).toHaveLength(1);
    expect(server.requests[1]).toMatchObject({ status: 200, duplicateRowCount: 1 });
  });

  it('setLatency delays responses; the client timeout option is ignored', async () => {
    server.setLatency(120);
    const started = performance.now();
    await events().insert([row('a', { id: 'a' })], RAW);
    expect(performance.now() - started).toBeGreaterThanOrEqual(110);

    // teeny-request hands `timeout` to node-fetch v3, which has no such option: the call waits.
    server.setLatency(250, { afterCommit: true });
    const impatient = client(20);
    const pending = events(impatient).insert([row('b', { id: 'b' })], RAW);
    // afterCommit: the rows are stored before the slow answer is sent.
    await server.waitForRows(EVENTS, 2, 2_000);
    expect(server.requests).toHaveLength(1);
    const [response] = await pending;
    expect(response).toEqual({ kind: 'bigquery#tableDataInsertAllResponse' });
    expect(server.requests[1]).toMatchObject({ status: 200, clientAborted: false });
  });

  it('setLatency with a table delays only that table, over the server-wide latency', async () => {
    server.createTable(OTHER, EVENTS_SCHEMA);
    const other = (): ReturnType<typeof events> => bigquery.dataset(DATASET).table('other');
    server.setLatency(300, { table: OTHER });
    const slow = other().insert([row('s', { id: 's' })], RAW);
    await events().insert([row('a', { id: 'a' })], RAW);
    // the other table's answer is still pending when the events table has answered
    expect(server.requests.map((r) => r.table.tableId)).toEqual(['events']);
    await slow;
    expect(server.requests.map((r) => r.table.tableId)).toEqual(['events', 'other']);
    const slowRequest = server.requests[1];
    expect((slowRequest?.completedAt ?? 0) - (slowRequest?.timestamp ?? 0)).toBeGreaterThanOrEqual(280);

    // a server-wide latency does not replace the table's own; 0 for the table turns it off there
    server.setLatency(200);
    server.setLatency(0, { table: OTHER });
    server.clearRequests();
    await Promise.all([events().insert([row('b', { id: 'b' })], RAW), other().insert([row('t', { id: 't' })], RAW)]);
    expect(server.requests.map((r) => r.table.tableId)).toEqual(['other', 'events']);
    // resetFaults clears a table's latency too
    server.setLatency(300, { table: OTHER });
    server.resetFaults();
    server.clearRequests();
    await other().insert([row('u', { id: 'u' })], RAW);
    expect((server.requests[0]?.completedAt ?? 0) - (server.requests[0]?.timestamp ?? 0)).toBeLessThan(280);
  });

  it('records a client that gave up while the answer was delayed', async () => {
    server.setLatency(200, { afterCommit: true });
    const url = `${server.url}/bigquery/v2/projects/${PROJECT}/datasets/${DATASET}/tables/events/insertAll`;
    const aborted = fetch(url, {
      method: 'POST',
      body: JSON.stringify({ rows: [{ insertId: 'z', json: { id: 'z' } }] }),
      headers: { 'content-type': 'application/json' },
      signal: AbortSignal.timeout(30),
    });
    await expect(aborted).rejects.toThrow();
    await server.waitForRequests(1, 2_000);
    expect(server.requests[0]).toMatchObject({ status: 200, clientAborted: true, storedRowCount: 1 });
    expect(server.rows(EVENTS).map((r) => r.insertId)).toEqual(['z']);
  });

  it('throttle answers 403 rateLimitExceeded beyond the token bucket and counts it', async () => {
    let clock = 5_000;
    await restart({ now: () => clock });
    server.throttle({ requestsPerSecond: 2 });
    await events().insert([row('a', { id: 'a' })], RAW);
    await events().insert([row('b', { id: 'b' })], RAW);
    const error = await rejection(events().insert([row('c', { id: 'c' })], RAW));
    expect(error.code).toBe(403);
    expect(error.errors?.[0]?.reason).toBe('rateLimitExceeded');
    expect(server.throttledCount).toBe(1);
    expect(server.requests[2]).toMatchObject({ throttled: true, status: 403 });
    clock += 500; // one token back
    await events().insert([row('c', { id: 'c' })], RAW);

    server.throttle({ rowsPerSecond: 3 });
    const three = ['d', 'e', 'f'].map((id) => row(id, { id }));
    await events().insert(three, RAW);
    expect((await rejection(events().insert([row('g', { id: 'g' })], RAW))).code).toBe(403);
    expect(server.throttledCount).toBe(2);
    clock += 1_000;
    await events().insert([row('g', { id: 'g' })], RAW);
    server.throttle(null);
    expect(server.rows(EVENTS)).toHaveLength(7);
  });

  it('denyTable answers 403 accessDenied until allowed again', async () => {
    server.denyTable(EVENTS);
    const error = await rejection(events().insert([row('a', { id: 'a' })], RAW));
    expect(error.code).toBe(403);
    expect(error.errors?.[0]?.reason).toBe('accessDenied');
    expect((await rejection(events().getMetadata())).code).toBe(403);
    server.allowTable(EVENTS);
    await events().insert([row('a', { id: 'a' })], RAW);
    expect(server.rows(EVENTS)).toHaveLength(1);
  });
});

describe('table lifecycle and waiting', () => {
  it('table.delete() and deleteTable() make insertAll answer 404 notFound', async () => {
    await events().insert([row('a', { id: 'a' })], RAW);
    await events().delete();
    expect(server.hasTable(EVENTS)).toBe(false);
    const error = await rejection(events().insert([row('b', { id: 'b' })], RAW));
    expect(error.code).toBe(404);
    expect(error.errors?.[0]?.reason).toBe('notFound');
    expect(error.message).toBe(`Not found: Table ${PROJECT}:${DATASET}.events`);
    expect(server.requests.at(-1)).toMatchObject({ status: 404, reason: 'notFound', insertIds: ['b'] });

    server.createTable(EVENTS, EVENTS_SCHEMA);
    await events().insert([row('b', { id: 'b' })], RAW);
    server.deleteTable(EVENTS);
    expect((await rejection(events().insert([row('c', { id: 'c' })], RAW))).code).toBe(404);
    expect(server.rows(EVENTS)).toEqual([]);

    const noDataset = await rejection(
      bigquery
        .dataset('missing')
        .table('t')
        .insert([row('x', { id: 'x' })], RAW),
    );
    expect(noDataset.code).toBe(404);
    expect(noDataset.message).toBe(`Not found: Dataset ${PROJECT}:missing`);
  });

  it('waitForRows resolves on insertion and rejects on timeout', async () => {
    const waiting = server.waitForRows(EVENTS, 2, 2_000);
    await events().insert([row('a', { id: 'a' })], RAW);
    await events().insert([row('b', { id: 'b' })], RAW);
    await expect(waiting).resolves.toBeUndefined();
    await expect(server.waitForRows(EVENTS, 3, 30)).rejects.toThrow(/timed out/);
  });
});

describe('table management', () => {
  const NEW: TableRef = { projectId: PROJECT, datasetId: DATASET, tableId: 'created' };
  const BASE = [
    { name: 'ts', type: 'TIMESTAMP', mode: 'REQUIRED' },
    { name: 'service', type: 'STRING', mode: 'REQUIRED' },
    { name: 'status', type: 'INT64', mode: 'REQUIRED' },
    { name: 'score', type: 'FLOAT64' },
    { name: 'tags', type: 'STRING', mode: 'REPEATED' },
    { name: 'source', type: 'RECORD', fields: [{ name: 'host', type: 'STRING' }] },
  ];

  let clock = 1_000_000;
  async function restartWithClock(options: BigQueryTestServerOptions = {}): Promise<void> {
    clock = 1_000_000;
    await restart({ now: () => clock, ...options });
  }

  it('tables.insert stores partitioning, clustering and description; a second insert is 409 duplicate', async () => {
    const dataset = bigquery.dataset(DATASET);
    await dataset.createTable('created', {
      schema: BASE,
      timePartitioning: { type: 'DAY', field: 'ts', expirationMs: '86400000' },
      clustering: { fields: ['service', 'status'] },
      description: 'Access logs',
    });
    const [metadata] = (await dataset.table('created').getMetadata()) as unknown as [Record<string, unknown>];
    expect(metadata['timePartitioning']).toEqual({ type: 'DAY', field: 'ts', expirationMs: '86400000' });
    expect(metadata['clustering']).toEqual({ fields: ['service', 'status'] });
    expect(metadata['description']).toBe('Access logs');
    expect(typeof metadata['etag']).toBe('string');
    expect(server.tableInfo(NEW)?.clustering).toEqual({ fields: ['service', 'status'] });

    const again = await rejection(dataset.createTable('created', { schema: BASE }));
    expect(again.code).toBe(409);
    expect(again.errors?.[0]?.reason).toBe('duplicate');
    expect(server.callCount('tables.insert')).toBe(2);
    expect(server.callCount('tables.get')).toBe(1);
  });

  it('tables.insert validates the partitioning field and the clustering columns like BigQuery', async () => {
    const dataset = bigquery.dataset(DATASET);
    const cases: Array<[Record<string, unknown>, RegExp]> = [
      [{ timePartitioning: { type: 'DAY', field: 'missing' } }, /partitioning cannot be found in the schema/],
      [{ timePartitioning: { type: 'DAY', field: 'service' } }, /can only be of type TIMESTAMP, DATE or DATETIME. The type found is: STRING/],
      [{ timePartitioning: { type: 'WEEK' } }, /WEEK is not a valid value/],
      [{ clustering: { fields: ['service', 'status', 'ts', 'score', 'tags'] } }, /Too many clustering fields: 5/],
      [{ clustering: { fields: ['nope'] } }, /clustering cannot be found in the schema. Invalid field: nope/],
      [{ clustering: { fields: ['score'] } }, /score is of type FLOAT which is not supported for clustering/],
      [{ clustering: { fields: ['tags'] } }, /ARRAY<STRING> which is not supported for clustering/],
    ];
    for (const [options, message] of cases) {
      const error = await rejection(dataset.createTable('created', { schema: BASE, ...options }));
      expect(error.code).toBe(400);
      expect(error.errors?.[0]?.reason).toBe('invalid');
      expect(error.message).toMatch(message);
    }
    expect(server.hasTable(NEW)).toBe(false);
    await dataset.createTable('created', { schema: BASE, timePartitioning: { type: 'HOUR' }, clustering: { fields: ['service', 'status', 'ts'] } });
    expect(server.tableInfo(NEW)?.timePartitioning).toEqual({ type: 'HOUR' });
  });

  it('tables.patch with a stale etag answers 412 and changes nothing; the fresh etag succeeds', async () => {
    const table = events();
    const [first] = (await table.getMetadata()) as unknown as [{ etag: string; schema: TableSchema }];
    const added = { fields: [...first.schema.fields, { name: 'region', type: 'STRING', mode: 'NULLABLE' as const }] };
    await table.setMetadata({ schema: added, etag: first.etag });
    const [second] = (await table.getMetadata()) as unknown as [{ etag: string; schema: TableSchema }];
    expect(second.etag).not.toBe(first.etag);
    expect(second.schema.fields.map((f) => f.name)).toContain('region');

    const stale = await rejection(table.setMetadata({ schema: { fields: [...added.fields, { name: 'zone', type: 'STRING' }] }, etag: first.etag }));
    expect(stale.code).toBe(412);
    expect(stale.errors?.[0]?.reason).toBe('conditionNotMet');
    expect(server.tableInfo(EVENTS)?.schema.fields.map((f) => f.name)).not.toContain('zone');
    expect(server.tableInfo(EVENTS)?.etag).toBe(second.etag);

    // Streamed rows do not change the etag: only metadata does.
    await table.insert([row('a', { id: 'a', region: 'eu' })], RAW);
    expect(server.tableInfo(EVENTS)?.etag).toBe(second.etag);
    expect(server.callCount('tables.patch')).toBe(2);
  });

  it('allows new NULLABLE/REPEATED fields at any depth and REQUIRED → NULLABLE', async () => {
    const table = events();
    const schema: TableSchema = {
      fields: [
        { name: 'id', type: 'STRING', mode: 'NULLABLE' },
        { name: 'count', type: 'INT64' },
        { name: 'tags', type: 'STRING', mode: 'REPEATED' },
        {
          name: 'source',
          type: 'RECORD',
          fields: [
            { name: 'host', type: 'STRING' },
            { name: 'port', type: 'INTEGER' },
            { name: 'zone', type: 'STRING', mode: 'NULLABLE' },
            { name: 'labels', type: 'RECORD', mode: 'REPEATED', fields: [{ name: 'key', type: 'STRING', mode: 'REQUIRED' }] },
          ],
        },
        { name: 'extra', type: 'RECORD', fields: [{ name: 'x', type: 'STRING', mode: 'REQUIRED' }] },
      ],
    };
    await table.setMetadata({ schema });
    const info = server.tableInfo(EVENTS);
    expect(info?.schema.fields[0]).toMatchObject({ name: 'id', mode: 'NULLABLE' });
    expect(info?.schema.fields[3]?.fields?.map((f) => f.name)).toEqual(['host', 'port', 'zone', 'labels']);
  });

  it('refuses type changes, removals, mode tightening and new REQUIRED fields with BigQuery messages', async () => {
    const table = events();
    const base = EVENTS_SCHEMA.fields;
    const prefix = `Provided Schema does not match Table ${PROJECT}:${DATASET}.events. `;
    const cases: Array<[TableSchema, string]> = [
      [{ fields: base.map((f) => (f.name === 'count' ? { ...f, type: 'STRING' } : f)) }, 'Field count has changed type from INTEGER to STRING'],
      [{ fields: base.filter((f) => f.name !== 'tags') }, 'Field tags is missing in new schema'],
      [{ fields: base.map((f) => (f.name === 'count' ? { ...f, mode: 'REQUIRED' as const } : f)) }, 'Field count has changed mode from NULLABLE to REQUIRED'],
      [{ fields: [...base, { name: 'must', type: 'STRING', mode: 'REQUIRED' }] }, 'Cannot add required fields to an existing schema. (field: must)'],
      [
        {
          fields: base.map((f) =>
            f.name === 'source' ? { ...f, fields: [...(f.fields ?? []), { name: 'z', type: 'STRING', mode: 'REQUIRED' as const }] } : f,
          ),
        },
        'Cannot add required fields to an existing schema. (field: source.z)',
      ],
      [
        {
          fields: base.map((f) =>
            f.name === 'source'
              ? {
                  ...f,
                  fields: [
                    { name: 'host', type: 'BYTES' },
                    { name: 'port', type: 'INTEGER' },
                  ],
                }
              : f,
          ),
        },
        'Field source.host has changed type from STRING to BYTES',
      ],
    ];
    const before = server.tableInfo(EVENTS);
    for (const [schema, message] of cases) {
      const error = await rejection(table.setMetadata({ schema }));
      expect(error.code).toBe(400);
      expect(error.errors?.[0]?.reason).toBe('invalid');
      expect(error.message).toBe(prefix + message);
    }
    expect(server.tableInfo(EVENTS)).toEqual(before);
  });

  it('answers 403 rateLimitExceeded beyond 5 updates per 10 s per table, then admits again', async () => {
    await restartWithClock();
    server.createTable(OTHER, EVENTS_SCHEMA);
    const table = events();
    const withColumn = (i: number): TableSchema => ({
      fields: [...EVENTS_SCHEMA.fields, ...Array.from({ length: i }, (_, k) => ({ name: `c${k}`, type: 'STRING' }))],
    });
    for (let i = 1; i <= 5; i++) {
      await table.setMetadata({ schema: withColumn(i) });
      clock += 1000;
    }
    const limited = await rejection(table.setMetadata({ schema: withColumn(6) }));
    expect(limited.code).toBe(403);
    expect(limited.errors?.[0]?.reason).toBe('rateLimitExceeded');
    expect(limited.message).toMatch(/^Exceeded rate limits: too many table update operations for this table/);
    // Another table has a budget of its own.
    await bigquery.dataset(DATASET).table('other').setMetadata({ description: 'x' });
    clock += 5_001; // the first update is now more than 10 s old
    await table.setMetadata({ schema: withColumn(6) });
    expect(server.tableInfo(EVENTS)?.schema.fields).toHaveLength(EVENTS_SCHEMA.fields.length + 6);
    expect(server.callCount('tables.patch')).toBe(8);
  });

  it('during the propagation delay insertAll still rejects the new field while get shows it', async () => {
    await restartWithClock({ schemaPropagationDelayMs: 20_000 });
    const table = events();
    await table.setMetadata({ schema: { fields: [...EVENTS_SCHEMA.fields, { name: 'region', type: 'STRING' }] } });
    const [metadata] = (await table.getMetadata()) as unknown as [{ schema: TableSchema }];
    expect(metadata.schema.fields.map((f) => f.name)).toContain('region');
    expect(server.streamingSchema(EVENTS)?.fields.map((f) => f.name)).not.toContain('region');

    const early = await rejection(table.insert([row('a', { id: 'a', region: 'eu' })], RAW));
    expect(early.response?.insertErrors?.[0]?.errors[0]).toMatchObject({ reason: 'invalid', message: 'no such field: region.' });
    clock += 19_999;
    await expect(table.insert([row('b', { id: 'b', region: 'eu' })], RAW)).rejects.toThrow();
    clock += 1;
    await table.insert([row('c', { id: 'c', region: 'eu' })], RAW);
    expect(server.rows(EVENTS).map((r) => r.json)).toEqual([{ id: 'c', region: 'eu' }]);
  });

  it('answers 404 notFound to insertAll for the configured window after tables.insert', async () => {
    await restartWithClock({ notFoundAfterCreateMs: 30_000 });
    await bigquery.dataset(DATASET).createTable('created', { schema: BASE });
    const created = bigquery.dataset(DATASET).table('created');
    await created.getMetadata();
    const json = { ts: '2026-01-01T00:00:00Z', service: 's', status: 1 };
    const early = await rejection(created.insert([row('a', json)], RAW));
    expect(early.code).toBe(404);
    expect(early.errors?.[0]?.reason).toBe('notFound');
    clock += 30_000;
    await created.insert([row('a', json)], RAW);
    expect(server.rows(NEW)).toHaveLength(1);
    expect(server.callCount('tabledata.insertAll')).toBe(2);
  });
});
