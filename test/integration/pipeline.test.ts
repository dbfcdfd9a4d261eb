import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { encodeConfluentHeader } from '../../src/core/schema-reference.js';
import { accessRecord, accessV1, accessV2, audit, auditRecord, encode, metric, metricRecord, tableSchemaFor } from '../support/log-schemas.js';
import { commitSchemaRevision, createAvroSchema, createSchemaTopic, uniqueName } from '../support/pubsub-fixtures.js';
import { Harness } from '../support/worker-harness.js';

const metadata = 'metadata: { messageId: _message_id, publishTime: _publish_time }';

// insertAll's own behaviour is asserted here (insertIds reused on a retry, the request resent
// without the refused row): the worker writes with insert-all. The Storage Write path of the same
// stream is covered by test/e2e/write-apis.test.ts and the fault suite.
describe('pipeline through the emulator into the BigQuery test server', () => {
  let h: Harness;

  beforeEach(async () => {
    h = await Harness.create({ writeApi: 'insert-all' });
  });

  afterEach(async () => {
    await h.close();
  });

  it('decodes two revisions of a Pub/Sub schema in one stream (BINARY and JSON topics)', async () => {
    const schemaName = uniqueName('access-schema');
    const rev1 = await createAvroSchema(h.pubsub, schemaName, accessV1);
    const rev2 = await commitSchemaRevision(h.pubsub, schemaName, accessV2);
    expect(rev1.revisionId).not.toBe(rev2.revisionId);
    const binaryTopic = await createSchemaTopic(h.pubsub, uniqueName('schema-topic'), schemaName, 'BINARY', {
      firstRevisionId: rev1.revisionId,
      lastRevisionId: rev2.revisionId,
    });
    const jsonTopic = await createSchemaTopic(h.pubsub, uniqueName('json-topic'), schemaName, 'JSON');
    const [binarySub] = await binaryTopic.createSubscription(uniqueName('binary-sub'));
    const [jsonSub] = await jsonTopic.createSubscription(uniqueName('json-sub'));
    const table = h.table('access');
    h.bigquery.createTable(table, tableSchemaFor(accessV2));

    await h.startWorker(`
registry: { kind: pubsub }
routing: { from: record-name }
routes:
  access:
    match: [com.acme.logs.Access]
    table: $DATASET.access
    subscription: ${binarySub.name}
    batch: { maxRows: 50, maxDelayMs: 50 }
    ${metadata}
  json_access:
    match: [none]
    table: $DATASET.access
    subscription: ${jsonSub.name}
`);
    const published: string[] = [];
    for (let i = 0; i < 20; i++) {
      const schema = i % 2 === 0 ? accessV1 : accessV2;
      const record = i % 2 === 0 ? accessRecord(i) : accessRecord(i, { latency_ms: { double: 12.5 } });
      published.push(await binaryTopic.publishMessage({ data: encode(schema, record) }));
    }
    // Avro JSON encoding: unions as {"type": value}, longs as numbers.
    const jsonRecord = {
      ts: 1764000000000123,
      method: 'PUT',
      path: '/json',
      status: 201,
      bytes: 7,
      user_agent: { string: 'json-client' },
      headers: {},
      tags: [],
      latency_ms: null,
    };
    published.push(await jsonTopic.publishMessage({ data: Buffer.from(JSON.stringify(jsonRecord)) }));

    const { deadLettered } = await h.expectConservation(published, [table]);
    // The JSON message is routed by record name to `access`, whatever subscription brought it.
    expect(deadLettered).toEqual([]);
    const rows = h.bigquery.rows(table).map((r) => r.json);
    expect(rows).toHaveLength(21);
    const odd = rows.find((r) => r.path === '/api/v1/items/1');
    expect(odd).toMatchObject({ latency_ms: 12.5, ts: '2025-11-24T16:00:00.000001Z', method: 'POST', bytes: 1001, user_agent: 'curl/8.5.0' });
    expect(odd?.headers).toEqual([
      { key: 'host', value: 'example.com' },
      { key: 'x-request-id', value: 'req-1' },
    ]);
    // revision 1 has no latency_ms: the column is left out of its rows
    const even = rows.find((r) => r.path === '/api/v1/items/0');
    expect(even).toMatchObject({ user_agent: null, method: 'GET' });
    expect(even?.latency_ms ?? null).toBeNull();
    expect(rows.find((r) => r.path === '/json')).toMatchObject({ ts: '2025-11-24T16:00:00.000123Z', status: 201, user_agent: 'json-client' });
    const row = h.bigquery.rows(table)[0];
    expect(row?.insertId).toBe(row?.json._message_id);
  });

  it('routes three log types into three tables from Confluent-framed messages through the registry server', async () => {
    const registry = await h.confluentRegistry();
    registry.setAuth({ username: 'svc', password: 's3cret' });
    registry.register(1, accessV1);
    registry.register(2, audit);
    registry.register(3, metric);
    for (const [name, schema] of [
      ['access', accessV1],
      ['audit', audit],
      ['metric', metric],
    ] as const)
      h.bigquery.createTable(h.table(name), tableSchemaFor(schema));

    await h.startWorker(`
registry:
  kind: auto
  confluent: { url: ${registry.url}, username: svc, password: s3cret, timeoutMs: 2000 }
routing: { from: attribute, key: log_type }
routes:
  access: { match: [access], table: $DATASET.access, batch: { maxRows: 100, maxDelayMs: 50 }, ${metadata} }
  audit: { match: [audit], table: $DATASET.audit, batch: { maxRows: 100, maxDelayMs: 50 }, ${metadata} }
  metric: { match: [metric], table: $DATASET.metric, batch: { maxRows: 100, maxDelayMs: 50 }, ${metadata} }
`);

    const frame = (id: number, body: Buffer): Buffer => Buffer.concat([encodeConfluentHeader(id), body]);
    const messages = [];
    for (let i = 0; i < 30; i++) {
      messages.push({ data: frame(1, encode(accessV1, accessRecord(i))), attributes: { log_type: 'access' } });
      messages.push({ data: frame(2, encode(audit, auditRecord(i))), attributes: { log_type: 'audit' } });
      messages.push({ data: frame(3, encode(metric, metricRecord(i))), attributes: { log_type: 'metric' } });
    }
    const published = await h.publish(messages);
    const { deadLettered } = await h.expectConservation(published, [h.table('access'), h.table('audit'), h.table('metric')]);
    expect(deadLettered).toEqual([]);
    expect(h.bigquery.rows(h.table('access'))).toHaveLength(30);
    expect(h.bigquery.rows(h.table('audit'))).toHaveLength(30);
    expect(h.bigquery.rows(h.table('metric'))).toHaveLength(30);
    expect(h.bigquery.rows(h.table('audit')).find((r) => r.json.actor === 'user-0')?.json).toMatchObject({
      amount: '123.45',
      ts: '2025-11-24T16:00:00.000000Z',
    });
    expect(registry.requests.every((r) => r.authorization === `Basic ${Buffer.from('svc:s3cret').toString('base64')}`)).toBe(true);
    // one fetch per id despite 30 concurrent messages of each
    expect(registry.requests.map((r) => r.path).sort()).toEqual(['/schemas/ids/1', '/schemas/ids/2', '/schemas/ids/3']);
  });

  it('reads Confluent ids from a directory of .avsc files', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tributary-schemas-'));
    await writeFile(join(dir, '3.avsc'), JSON.stringify(metric));
    h.bigquery.createTable(h.table('metric'), tableSchemaFor(metric));
    await h.startWorker(`
registry: { kind: directory, directory: ${dir} }
routing: { from: record-name }
routes:
  metric: { match: [com.acme.logs.Metric], table: $DATASET.metric, batch: { maxDelayMs: 50 }, ${metadata} }
`);
    const published = await h.publish(
      Array.from({ length: 25 }, (_, i) => ({ data: Buffer.concat([encodeConfluentHeader(3), encode(metric, metricRecord(i))]) })),
    );
    await h.expectConservation(published, [h.table('metric')]);
    expect(
      h.bigquery
        .rows(h.table('metric'))
        .map((r) => r.json.value)
        .sort(),
    ).toContain(1.5);
  });

  it('dead-letters a poison row among 500 on the first attempt; the 499 land with the same insertIds', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tributary-schemas-'));
    await writeFile(join(dir, '1.avsc'), JSON.stringify(accessV1));
    const table = h.table('access');
    h.bigquery.createTable(table, tableSchemaFor(accessV1));
    await h.startWorker(`
registry: { kind: directory, directory: ${dir} }
routing: { from: attribute, key: log_type }
routes:
  access: { match: [access], table: $DATASET.access, batch: { maxRows: 500, maxDelayMs: 2000 }, maxInFlightBatches: 1, ${metadata} }
`);
    // Row 137 passes pre-validation but BigQuery calls it invalid (as it does for values only it
    // can judge); the test server is told to.
    const messages = Array.from({ length: 500 }, (_, i) => ({
      data: Buffer.concat([encodeConfluentHeader(1), encode(accessV1, accessRecord(i, i === 137 ? { path: 'POISON' } : {}))]),
      attributes: { log_type: 'access' },
    }));
    h.bigquery.rejectRow((row) => (row.json.path === 'POISON' ? { location: 'path', message: 'Invalid value: POISON' } : null));
    const published = await h.publish(messages);
    const { deadLettered } = await h.expectConservation(published, [table]);
    expect(deadLettered).toHaveLength(1);
    expect(deadLettered[0]?.attributes).toMatchObject({
      tributary_error_code: 'BIGQUERY_ROW_INVALID',
      tributary_route: 'access',
      tributary_source_message_id: published[137],
      tributary_schema_confluent_id: '1',
      log_type: 'access',
    });
    expect(deadLettered[0]?.attributes.tributary_error_message).toContain('path');
    expect(deadLettered[0]?.data.equals(messages[137]?.data ?? Buffer.alloc(0))).toBe(true);
    const [first, second] = h.bigquery.requests;
    expect(h.bigquery.requests).toHaveLength(2);
    expect(first?.rowCount).toBe(500);
    expect(second?.insertIds).toEqual(first?.insertIds.filter((id) => id !== published[137]));
    expect(h.bigquery.rows(table)).toHaveLength(499);
  });

  it('dead-letters an unknown schema id, a truncated payload and an unrouted log type, each with its reason', async () => {
    const registry = await h.confluentRegistry();
    registry.register(1, accessV1);
    h.bigquery.createTable(h.table('access'), tableSchemaFor(accessV1));
    await h.startWorker(`
registry: { kind: confluent, confluent: { url: ${registry.url} } }
routes:
  access: { match: [access], table: $DATASET.access, batch: { maxDelayMs: 50 }, ${metadata} }
`);
    const good = Buffer.concat([encodeConfluentHeader(1), encode(accessV1, accessRecord(1))]);
    const published = await h.publish([
      { data: good, attributes: { log_type: 'access' } },
      { data: Buffer.concat([encodeConfluentHeader(999), encode(accessV1, accessRecord(2))]), attributes: { log_type: 'access' } },
      { data: good.subarray(0, good.length - 7), attributes: { log_type: 'access' } },
      { data: good, attributes: { log_type: 'nobody' } },
      { data: Buffer.from('plain text'), attributes: { log_type: 'access' } },
    ]);
    const { deadLettered } = await h.expectConservation(published, [h.table('access')]);
    const codes = Object.fromEntries(deadLettered.map((m) => [m.attributes.tributary_source_message_id, m.attributes.tributary_error_code]));
    expect(codes).toEqual({
      [published[1] as string]: 'SCHEMA_NOT_FOUND',
      [published[2] as string]: 'DECODE_FAILED',
      [published[3] as string]: 'UNROUTED',
      [published[4] as string]: 'NO_SCHEMA_REFERENCE',
    });
    expect(h.bigquery.rows(h.table('access'))).toHaveLength(1);
  });

  it('pre-validates rows against the table: a NULL in a REQUIRED column never reaches BigQuery', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tributary-schemas-'));
    await writeFile(join(dir, '1.avsc'), JSON.stringify(accessV1));
    const schema = tableSchemaFor(accessV1);
    // The table demands user_agent, which the Avro schema allows to be null.
    h.bigquery.createTable(h.table('access'), { fields: schema.fields.map((f) => (f.name === 'user_agent' ? { ...f, mode: 'REQUIRED' } : f)) });
    await h.startWorker(`
registry: { kind: directory, directory: ${dir} }
routes:
  access: { match: [access], table: $DATASET.access, batch: { maxDelayMs: 50 }, ${metadata} }
`);
    const published = await h.publish(
      [0, 1, 2].map((i) => ({ data: Buffer.concat([encodeConfluentHeader(1), encode(accessV1, accessRecord(i))]), attributes: { log_type: 'access' } })),
    );
    const { deadLettered } = await h.expectConservation(published, [h.table('access')]);
    expect(deadLettered).toHaveLength(1);
    expect(deadLettered[0]?.attributes.tributary_error_code).toBe('ROW_INVALID');
    expect(deadLettered[0]?.attributes.tributary_error_message).toMatch(/user_agent.*REQUIRED.*NULL/);
    expect(h.bigquery.requests.flatMap((r) => r.insertIds)).not.toContain(published[0]);
  });

  it('rides out BigQuery answering 503 for a while: retries, no dead-letter, then success', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tributary-schemas-'));
    await writeFile(join(dir, '1.avsc'), JSON.stringify(accessV1));
    h.bigquery.createTable(h.table('access'), tableSchemaFor(accessV1));
    h.bigquery.failNext(3, { status: 503, reason: 'backendError' });
    const worker = await h.startWorker(`
registry: { kind: directory, directory: ${dir} }
routes:
  access: { match: [access], table: $DATASET.access, batch: { maxRows: 100, maxDelayMs: 50 }, maxInFlightBatches: 1, ${metadata} }
`);
    const published = await h.publish(
      Array.from({ length: 40 }, (_, i) => ({
        data: Buffer.concat([encodeConfluentHeader(1), encode(accessV1, accessRecord(i))]),
        attributes: { log_type: 'access' },
      })),
    );
    const { deadLettered } = await h.expectConservation(published, [h.table('access')]);
    expect(deadLettered).toEqual([]);
    const failed = h.bigquery.requests.filter((r) => r.status === 503);
    expect(failed).toHaveLength(3);
    const ok = h.bigquery.requests.filter((r) => r.status === 200);
    // every retry resent the failed request's rows with the same insertIds
    for (const f of failed) expect(ok.some((o) => f.insertIds.every((id) => o.insertIds.includes(id)))).toBe(true);
    const metrics = await worker.metrics.registry.getSingleMetricAsString('tributary_retries_total');
    expect(metrics).toMatch(/code="BIGQUERY_UNAVAILABLE"} 3/);
  });
});
