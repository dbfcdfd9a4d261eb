import { BigQuery } from '@google-cloud/bigquery';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BigQueryTables, type BigQueryTablesOptions } from '../../src/adapters/bigquery-tables.js';
import type { AvroSchema } from '../../src/core/avro-type.js';
import { routeTableFields } from '../../src/core/schema-diff.js';
import type { TableChangeKind, TableChangeResult } from '../../src/core/table-change-observer.js';
import type { TableField, TableRef } from '../../src/core/table-schema.js';
import { TributaryError } from '../../src/errors.js';
import { startBigQueryTestServer, type BigQueryTestServer, type BigQueryTestServerOptions } from '../support/bigquery-test-server.js';

process.env['METADATA_SERVER_DETECTION'] = 'none';

const PROJECT = 'test-project';
const ACCESS: TableRef = { projectId: PROJECT, datasetId: 'logs', tableId: 'access' };
const METADATA = { messageId: '_message_id', publishTime: '_publish_time' };

function record(extra: unknown[] = [], replace: Record<string, unknown> = {}): AvroSchema {
  const base = [
    { name: 'ts', type: { type: 'long', logicalType: 'timestamp-micros' } },
    { name: 'service', type: 'string' },
    { name: 'status', type: 'int' },
    { name: 'source', type: { type: 'record', name: 'Source', fields: [{ name: 'host', type: 'string' }] } },
  ].map((f) => (f.name in replace ? { name: f.name, type: replace[f.name] } : f));
  return { type: 'record', name: 'Access', fields: [...base, ...extra] } as unknown as AvroSchema;
}

const REV1 = routeTableFields(record(), METADATA);
/** rev2 adds a nullable string, an array and a field inside the nested record. */
const REV2 = routeTableFields(
  record(
    [
      { name: 'region', type: ['null', 'string'], default: null },
      { name: 'tags', type: { type: 'array', items: 'string' } },
    ],
    {
      source: {
        type: 'record',
        name: 'Source',
        fields: [
          { name: 'host', type: 'string' },
          { name: 'zone', type: ['null', 'string'], default: null },
        ],
      },
    },
  ),
  METADATA,
);
const REV2B = routeTableFields(record([{ name: 'user_agent', type: ['null', 'string'], default: null }]), METADATA);
const REV3 = routeTableFields(record([], { status: 'string' }), METADATA);

interface Recorded {
  table: string;
  kind: TableChangeKind;
  result: TableChangeResult;
}

let server: BigQueryTestServer;
let clock: number;
let sleeps: number[];
let changes: Recorded[];

async function start(options: BigQueryTestServerOptions = {}): Promise<void> {
  clock = 1_700_000_000_000;
  server = await startBigQueryTestServer({ now: () => clock, ...options });
  server.createDataset(ACCESS);
}

function adapter(options: Partial<BigQueryTablesOptions> = {}): BigQueryTables {
  return new BigQueryTables({
    projectId: PROJECT,
    apiEndpoint: server.url,
    timeoutMs: 10_000,
    observer: { tableChanged: (table, kind, result) => changes.push({ table, kind, result }) },
    clock: {
      now: () => clock,
      sleep: async (ms) => {
        sleeps.push(ms);
        clock += ms;
      },
    },
    random: () => 0.5,
    ...options,
  });
}

async function failure(promise: Promise<unknown>): Promise<TributaryError> {
  try {
    await promise;
  } catch (err) {
    expect(err).toBeInstanceOf(TributaryError);
    return err as TributaryError;
  }
  throw new Error('expected a rejection');
}

function names(fields: readonly TableField[] | undefined): string[] {
  return (fields ?? []).map((f) => f.name);
}

beforeEach(async () => {
  sleeps = [];
  changes = [];
  await start();
});

afterEach(async () => {
  await server.close();
});

describe('BigQueryTables.createTable', () => {
  it('creates the table with the asked partitioning, clustering, expiration and description; a duplicate is success', async () => {
    const tables = adapter();
    const layout = { partitioning: { type: 'DAY' as const, field: 'ts' }, clustering: ['service', 'status'], expirationDays: 400, description: 'Access logs' };
    expect(tables.createdAt(ACCESS)).toBeUndefined();
    await expect(tables.createTable(ACCESS, REV1, layout)).resolves.toBe('created');
    expect(tables.createdAt(ACCESS)).toBe(clock);
    const info = server.tableInfo(ACCESS);
    expect(info?.timePartitioning).toEqual({ type: 'DAY', field: 'ts', expirationMs: String(400 * 86_400_000) });
    expect(info?.clustering).toEqual({ fields: ['service', 'status'] });
    expect(info?.description).toBe('Access logs');
    expect(names(info?.schema.fields)).toEqual(['ts', 'service', 'status', 'source', '_message_id', '_publish_time']);

    const other = adapter();
    clock += 5;
    await expect(other.createTable(ACCESS, REV1, layout)).resolves.toBe('exists');
    expect(other.createdAt(ACCESS)).toBe(clock);
    expect(server.callCount('tables.insert')).toBe(2);
    expect(changes.map((c) => `${c.kind}/${c.result}`)).toEqual(['created/ok', 'created/conflict']);
  });

  it('three replicas racing create the table once with its layout', async () => {
    const layout = { partitioning: { type: 'HOUR' as const }, clustering: ['service'] };
    const results = await Promise.all([adapter(), adapter(), adapter()].map((t) => t.createTable(ACCESS, REV1, layout)));
    expect(results.filter((r) => r === 'created')).toHaveLength(1);
    expect(results.filter((r) => r === 'exists')).toHaveLength(2);
    expect(server.tableInfo(ACCESS)?.timePartitioning).toEqual({ type: 'HOUR' });
  });

  it('refuses a layout BigQuery would refuse before asking, as a destination error naming the setting', async () => {
    const error = await failure(adapter().createTable(ACCESS, REV1, { partitioning: { type: 'DAY', field: 'service' }, clustering: ['nope'] }));
    expect(error.code).toBe('TABLE_NOT_FOUND');
    expect(error.errorClass).toBe('destination');
    expect(error.message).toContain('partitioning field "service" is STRING; it must be a TIMESTAMP, DATE or DATETIME column');
    expect(error.message).toContain('clustering column "nope" is not a column of the table');
    expect(server.callCount('tables.insert')).toBe(0);
  });
});

describe('BigQueryTables.evolve', () => {
  beforeEach(() => {
    server.createTable(ACCESS, { fields: REV1 });
  });

  it('adds the columns once per (table, schema id) and the rows carrying them land after propagation', async () => {
    await server.close();
    await start({ schemaPropagationDelayMs: 20_000 });
    server.createTable(ACCESS, { fields: REV1 });
    const tables = adapter();
    const result = await tables.evolve(ACCESS, 'rev2', REV2);
    expect(result.changed).toBe(true);
    const fields = server.tableInfo(ACCESS)?.schema.fields ?? [];
    expect(names(fields)).toEqual(['ts', 'service', 'status', 'source', '_message_id', '_publish_time', 'region', 'tags']);
    expect(fields.find((f) => f.name === 'tags')?.mode).toBe('REPEATED');
    expect(names(fields.find((f) => f.name === 'source')?.fields)).toEqual(['host', 'zone']);
    expect(changes).toEqual([{ table: 'test-project.logs.access', kind: 'added-columns', result: 'ok' }]);

    // The same schema id again: no call at all.
    const calls = server.callCount('tables.get') + server.callCount('tables.patch');
    await expect(tables.evolve(ACCESS, 'rev2', REV2)).resolves.toBe(result);
    expect(server.callCount('tables.get') + server.callCount('tables.patch')).toBe(calls);
    // A newer schema id the table already fits: one read, no patch.
    await expect(tables.evolve(ACCESS, 'rev2-again', REV2)).resolves.toMatchObject({ changed: false });
    expect(server.callCount('tables.patch')).toBe(1);

    const bigquery = new BigQuery({ apiEndpoint: server.url, projectId: PROJECT, autoRetry: false });
    const row = {
      ts: '2026-01-01T00:00:00Z',
      service: 's',
      status: 1,
      source: { host: 'h', zone: 'z' },
      _message_id: 'm',
      _publish_time: '2026-01-01T00:00:00Z',
      region: 'eu',
      tags: ['a'],
    };
    const insert = () =>
      bigquery
        .dataset('logs')
        .table('access')
        .insert([{ insertId: 'm', json: row }], { raw: true, partialRetries: 0 });
    await expect(insert()).rejects.toMatchObject({ name: 'PartialFailureError' });
    clock += 20_000;
    await insert();
    expect(server.rows(ACCESS)[0]?.json).toEqual(row);
  });

  it('relaxes a REQUIRED column when the field became nullable', async () => {
    const nullable = routeTableFields(record([], { status: ['null', 'int'] }), METADATA);
    const result = await adapter().evolve(ACCESS, 'rev-nullable', nullable);
    expect(result.diff.relaxations.map((r) => r.path)).toEqual(['status']);
    expect(server.tableInfo(ACCESS)?.schema.fields.find((f) => f.name === 'status')?.mode).toBe('NULLABLE');
    expect(changes.map((c) => `${c.kind}/${c.result}`)).toEqual(['relaxed/ok']);
  });

  it('refuses a type change without patching, as SCHEMA_INCOMPATIBLE naming the field and both types, and remembers it', async () => {
    const tables = adapter();
    const before = server.tableInfo(ACCESS);
    const error = await failure(tables.evolve(ACCESS, 'rev3', REV3));
    expect(error.code).toBe('SCHEMA_INCOMPATIBLE');
    expect(error.errorClass).toBe('data');
    expect(error.message).toBe(
      'test-project.logs.access: field "status" is INT64 in the table but STRING in the record: BigQuery cannot change a column\'s type',
    );
    expect(server.callCount('tables.patch')).toBe(0);
    expect(server.tableInfo(ACCESS)).toEqual(before);
    expect(changes.map((c) => `${c.kind}/${c.result}`)).toEqual(['refused/ok']);

    const reads = server.callCount('tables.get');
    expect((await failure(tables.evolve(ACCESS, 'rev3', REV3))).code).toBe('SCHEMA_INCOMPATIBLE');
    expect(server.callCount('tables.get')).toBe(reads);
    clock += 60_000; // after the refusal's time to live the table is looked at again
    expect((await failure(tables.evolve(ACCESS, 'rev3', REV3))).code).toBe('SCHEMA_INCOMPATIBLE');
    expect(server.callCount('tables.get')).toBe(reads + 1);
  });

  it('answers TABLE_NOT_FOUND for a missing table', async () => {
    server.deleteTable(ACCESS);
    expect((await failure(adapter().evolve(ACCESS, 'rev2', REV2))).code).toBe('TABLE_NOT_FOUND');
  });

  it('three replicas racing the same change make one effective change with few update calls', async () => {
    const replicas = [adapter(), adapter(), adapter()];
    const results = await Promise.all(replicas.map((t) => t.evolve(ACCESS, 'rev2', REV2)));
    expect(results.filter((r) => r.changed)).toHaveLength(1);
    expect(changes.filter((c) => c.result === 'ok')).toHaveLength(1);
    expect(server.callCount('tables.patch')).toBeLessThanOrEqual(3);
    expect(server.callCount('tables.get')).toBeLessThanOrEqual(6);
    const fields = server.tableInfo(ACCESS)?.schema.fields ?? [];
    expect(names(fields).filter((n) => n === 'region')).toHaveLength(1);
    expect(names(fields.find((f) => f.name === 'source')?.fields)).toEqual(['host', 'zone']);
  });

  it('replicas racing different additions lose none of them: the etag forces a re-read', async () => {
    const [a, b, c] = [adapter(), adapter(), adapter()];
    await Promise.all([a.evolve(ACCESS, 'rev2', REV2), b.evolve(ACCESS, 'rev2b', REV2B), c.evolve(ACCESS, 'rev2', REV2)]);
    const fields = names(server.tableInfo(ACCESS)?.schema.fields);
    expect(fields).toContain('region');
    expect(fields).toContain('user_agent');
    expect(changes.filter((x) => x.result === 'ok')).toHaveLength(2);
    expect(changes.filter((x) => x.result === 'conflict').length).toBeGreaterThan(0);
    expect(server.callCount('tables.patch')).toBeLessThanOrEqual(4);
  });

  it('keeps one update in flight per table in a process: concurrent schema ids queue instead of conflicting', async () => {
    const tables = adapter();
    const evolved = await Promise.all([tables.evolve(ACCESS, 'rev2', REV2), tables.evolve(ACCESS, 'rev2b', REV2B), tables.evolve(ACCESS, 'rev2', REV2)]);
    expect(evolved[0]).toBe(evolved[2]); // the same change shared its outcome
    expect(server.callCount('tables.patch')).toBe(2);
    expect(changes.map((c) => c.result)).toEqual(['ok', 'ok']);
  });

  it('backs off a 403 rateLimitExceeded and succeeds once the window has room, never as a data error', async () => {
    const bigquery = new BigQuery({ apiEndpoint: server.url, projectId: PROJECT, autoRetry: false });
    for (let i = 0; i < 5; i++)
      await bigquery
        .dataset('logs')
        .table('access')
        .setMetadata({ description: `d${i}` });
    const result = await adapter().evolve(ACCESS, 'rev2', REV2);
    expect(result.changed).toBe(true);
    expect(changes.filter((c) => c.result === 'rate-limited').length).toBeGreaterThan(0);
    expect(sleeps.length).toBeGreaterThan(0);
    expect(sleeps.every((ms) => ms >= 250 && ms <= 10_000)).toBe(true);
    expect(sleeps.reduce((a, b) => a + b, 0)).toBeGreaterThanOrEqual(10_000 - 1);
  });

  it('gives up a change that stays rate-limited past its bound with a transient error', async () => {
    await server.close();
    await start({ tableUpdateLimit: { updates: 0, windowMs: 10_000 } });
    server.createTable(ACCESS, { fields: REV1 });
    const error = await failure(adapter({ maxRateLimitWaitMs: 30_000 }).evolve(ACCESS, 'rev2', REV2));
    expect(error.code).toBe('BIGQUERY_RATE_LIMITED');
    expect(error.errorClass).toBe('transient');
    expect(sleeps.reduce((a, b) => a + b, 0)).toBeLessThanOrEqual(30_000);
    expect(server.callCount('tables.patch')).toBe(sleeps.length + 1);
  });
});
