import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { AvroSchema } from '../../src/core/avro-type.js';
import { encodeConfluentHeader } from '../../src/core/schema-reference.js';
import { accessRecord, accessV1, accessWithNewFields, accessWithNewFieldsRecord, encode, tableSchemaFor } from '../support/log-schemas.js';
import type { ConfluentRegistryServer } from '../support/confluent-registry-server.js';
import { Harness } from '../support/worker-harness.js';

const accessRev2 = accessWithNewFields;
const rev2Record = accessWithNewFieldsRecord;

/** rev3: `status` changes type (int → string). */
const accessRev3 = {
  ...accessV1,
  fields: accessV1.fields.map((f) => (f.name === 'status' ? { name: 'status', type: 'string' } : f)),
} as const satisfies AvroSchema;

const metadata = 'metadata: { messageId: _message_id, publishTime: _publish_time }';

describe('schema evolution in the running worker (emulator + BigQuery test server)', () => {
  let h: Harness;
  let registry: ConfluentRegistryServer;
  const frame = (id: number, body: Buffer): Buffer => Buffer.concat([encodeConfluentHeader(id), body]);

  beforeEach(async () => {
    h = await Harness.create();
    registry = await h.confluentRegistry();
    registry.register(1, accessV1);
    registry.register(2, accessRev2);
    registry.register(3, accessRev3);
  });

  afterEach(async () => {
    await h.close();
  });

  const route = (extra = ''): string => `
registry: { kind: confluent, confluent: { url: ${registry.url} } }
routing: { from: record-name }
routes:
  access:
    match: [com.acme.logs.Access]
    table: $DATASET.access
    batch: { maxRows: 50, maxDelayMs: 50 }
    schemaEvolution: add-columns
    ${metadata}
    ${extra}
`;

  it('rev1 → rev2 (a nullable string, an array, a nested record): every row lands with its new values, no dead letter, one change', async () => {
    const table = h.table('access');
    h.bigquery.createTable(table, tableSchemaFor(accessV1));
    h.bigquery.resetCallCounts();
    await h.startWorker(route());
    const published = await h.publish(Array.from({ length: 20 }, (_, i) => ({ data: frame(1, encode(accessV1, accessRecord(i))) })));
    await h.bigquery.waitForRows(table, 20, 20_000);
    published.push(...(await h.publish(Array.from({ length: 60 }, (_, i) => ({ data: frame(2, encode(accessRev2, rev2Record(100 + i))) })))));
    published.push(...(await h.publish(Array.from({ length: 10 }, (_, i) => ({ data: frame(1, encode(accessV1, accessRecord(200 + i))) })))));

    const { deadLettered } = await h.expectConservation(published, [table]);
    expect(deadLettered).toEqual([]);
    const rows = h.bigquery.rows(table).map((r) => r.json);
    expect(rows).toHaveLength(90);
    const newRows = rows.filter((r) => r.region !== undefined && r.region !== null);
    expect(newRows).toHaveLength(60);
    expect(rows.find((r) => r.path === '/api/v1/items/101')).toMatchObject({ region: 'eu-2', labels: ['new', 'l101'], geo: { city: 'Lyon', zone: 'z1' } });
    const fields = h.bigquery.tableInfo(table)?.schema.fields ?? [];
    expect(fields.slice(-3).map((f) => [f.name, f.type, f.mode])).toEqual([
      ['region', 'STRING', 'NULLABLE'],
      ['labels', 'STRING', 'REPEATED'],
      ['geo', 'RECORD', 'NULLABLE'],
    ]);
    expect(fields.find((f) => f.name === 'geo')?.fields?.map((f) => [f.name, f.mode])).toEqual([
      ['city', 'NULLABLE'],
      ['zone', 'NULLABLE'],
    ]);
    expect(h.bigquery.callCount('tables.patch') + h.bigquery.callCount('tables.update')).toBeLessThanOrEqual(2);
  });

  it('rev3 changes a type: its messages are dead-lettered as SCHEMA_INCOMPATIBLE, the table is untouched, rev1 keeps flowing', async () => {
    const table = h.table('access');
    h.bigquery.createTable(table, tableSchemaFor(accessV1));
    const before = structuredClone(h.bigquery.tableInfo(table));
    h.bigquery.resetCallCounts();
    await h.startWorker(route());
    const messages = [];
    for (let i = 0; i < 40; i++) {
      messages.push(
        i % 4 === 0
          ? { data: frame(3, encode(accessRev3, { ...accessRecord(i), status: 'two hundred' })) }
          : { data: frame(1, encode(accessV1, accessRecord(i))) },
      );
    }
    const published = await h.publish(messages);
    const { deadLettered } = await h.expectConservation(published, [table]);
    expect(deadLettered).toHaveLength(10);
    for (const m of deadLettered) {
      expect(m.attributes.tributary_error_code).toBe('SCHEMA_INCOMPATIBLE');
      expect(m.attributes.tributary_error_message).toMatch(/field "status" is INT64 in the table but STRING in the record/);
    }
    expect(h.bigquery.rows(table)).toHaveLength(30);
    expect(h.bigquery.tableInfo(table)).toEqual(before);
    expect(h.bigquery.callCount('tables.patch') + h.bigquery.callCount('tables.update')).toBe(0);
  });

  it('a missing table with createTable is created once with its partitioning and clustering while three workers race', async () => {
    const table = h.table('access');
    h.bigquery.createDataset({ projectId: table.projectId, datasetId: table.datasetId });
    // Streaming inserts do not see a new table for a while: a wait, not a pause storm.
    h.bigquery.setNotFoundAfterCreate(3000);
    const config = route(`createTable: { partitioning: { type: DAY, field: ts }, clustering: [method, status], description: "Access logs" }`);
    const workers = await Promise.all([h.startWorker(config), h.startWorker(config), h.startWorker(config)]);
    const published = await h.publish(Array.from({ length: 90 }, (_, i) => ({ data: frame(1, encode(accessV1, accessRecord(i))) })));
    const { deadLettered } = await h.expectConservation(published, [table], 45_000);
    expect(deadLettered).toEqual([]);
    expect(h.bigquery.rows(table)).toHaveLength(90);
    const info = h.bigquery.tableInfo(table);
    expect(info?.timePartitioning).toMatchObject({ type: 'DAY', field: 'ts' });
    expect(info?.clustering).toEqual({ fields: ['method', 'status'] });
    expect(info?.description).toBe('Access logs');
    expect(info?.schema.fields.map((f) => f.name)).toEqual([...accessV1.fields.map((f) => f.name), '_message_id', '_publish_time']);
    // One tables.insert per worker at most: one creates, the others get 409 duplicate.
    expect(h.bigquery.callCount('tables.insert')).toBeGreaterThanOrEqual(1);
    expect(h.bigquery.callCount('tables.insert')).toBeLessThanOrEqual(3);
    const snapshot = await Promise.all(workers.map((w) => w.metrics.registry.getSingleMetricAsString('tributary_table_changes_total')));
    const created = snapshot.join('\n').match(/kind="created",result="ok"\} (\d+)/g) ?? [];
    expect(created).toHaveLength(1);
    expect(snapshot.join('\n')).not.toMatch(/tributary_route_state\{[^}]*state="paused"[^}]*\} 1/);
  });
});

describe.each(['insert-all', 'storage-write'] as const)('schema evolution: the propagation window on %s', (writeApi) => {
  let h: Harness;
  let registry: ConfluentRegistryServer;

  beforeEach(async () => {
    h = await Harness.create({ writeApi });
    registry = await h.confluentRegistry();
    registry.register(2, accessRev2);
  });

  afterEach(async () => {
    await h.close();
  });

  it('20 s before streaming writes see the new columns cost no dead letter: rows wait, then land with their new values', async () => {
    const table = h.table('access');
    h.bigquery.createTable(table, tableSchemaFor(accessV1));
    h.bigquery.setSchemaPropagationDelay(20_000);
    const worker = await h.startWorker(`
registry: { kind: confluent, confluent: { url: ${registry.url} } }
routing: { from: record-name }
routes:
  access: { match: [com.acme.logs.Access], table: $DATASET.access, batch: { maxRows: 50, maxDelayMs: 50 }, schemaEvolution: add-columns, ${metadata} }
`);
    const published = await h.publish(
      Array.from({ length: 30 }, (_, i) => ({ data: Buffer.concat([encodeConfluentHeader(2), encode(accessRev2, rev2Record(i))]) })),
    );
    const started = Date.now();
    const { deadLettered } = await h.expectConservation(published, [table], 80_000);
    expect(deadLettered).toEqual([]);
    expect(Date.now() - started).toBeGreaterThanOrEqual(15_000);
    expect(h.bigquery.rows(table).every((r) => typeof r.json.region === 'string')).toBe(true);
    if (writeApi === 'insert-all') {
      // insertAll answers `invalid` "no such field": the rows are held as SCHEMA_PROPAGATING.
      const waits = await worker.metrics.registry.getSingleMetricAsString('tributary_schema_change_wait_seconds');
      expect(waits).toMatch(/tributary_schema_change_wait_seconds_count\{route="access",kind="propagation"\} [1-9]/);
      const retries = await worker.metrics.registry.getSingleMetricAsString('tributary_retries_total');
      expect(retries).toMatch(/code="SCHEMA_PROPAGATING"/);
    } else {
      // The Storage Write API refuses the writer schema with the new columns until it sees them:
      // the append is retried on a new connection (and nacked for redelivery past the retry budget).
      expect(h.storage.requests.some((r) => r.code === 3 && /more fields than BigQuery schema/.test(r.message))).toBe(true);
    }
  }, 120_000);
});
