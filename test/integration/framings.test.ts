import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { directorySchemaSource, pubsubSchemaSource } from '../../src/adapters/fingerprint-sources.js';
import { fingerprintBytes, fingerprintSchema } from '../../src/core/schema-fingerprint.js';
import { encodeConfluentHeader } from '../../src/core/schema-reference.js';
import { buildContainer } from '../support/avro-container.js';
import { accessRecord, accessV2, audit, auditRecord, encode, metric, metricRecord, tableSchemaFor } from '../support/log-schemas.js';
import { commitSchemaRevision, createAvroSchema, uniqueName } from '../support/pubsub-fixtures.js';
import { metricValue, parseMetrics } from '../support/prometheus-text.js';
import { until } from '../support/until.js';
import { Harness, PROJECT } from '../support/worker-harness.js';

const metadata = 'metadata: { messageId: _message_id, recordIndex: _record_index }';
const INDEX_FIELD = { name: '_record_index', type: 'INTEGER', mode: 'REQUIRED' } as const;

// The insertId of each row (the message id, or `<messageId>:<n>` per record of a container file) is
// asserted here: insertAll's identity of a row. Storage Write rows carry none.
describe('all four framings on one subscription', () => {
  let h: Harness;

  beforeEach(async () => {
    h = await Harness.create({ writeApi: 'insert-all' });
  });

  afterEach(async () => {
    await h.close();
  });

  it('decodes Pub/Sub schema, Confluent, single-object and container-file messages and lands every record exactly once', async () => {
    // Pub/Sub schema revision for audit, Confluent id for metric, a Confluent subject for the
    // single-object access messages, and container files of metric records embedding the schema.
    const schemaName = uniqueName('audit-schema');
    const auditRev = await createAvroSchema(h.pubsub, schemaName, audit);
    const registry = await h.confluentRegistry();
    registry.register(3, metric);
    registry.register(7, accessV2, { subject: 'access-value' });
    const dir = await mkdtemp(join(tmpdir(), 'tributary-framings-'));
    const nested = { type: 'record', name: 'Nested', namespace: 'com.acme.logs', fields: [{ name: 'xs', type: { type: 'array', items: ['null', 'long'] } }] };
    await writeFile(join(dir, 'unused.avsc'), JSON.stringify(nested));
    for (const [name, schema] of [
      ['access', accessV2],
      ['audit', audit],
      ['metric', metric],
    ] as const) {
      const table = tableSchemaFor(schema);
      h.bigquery.createTable(h.table(name), { fields: [...table.fields, INDEX_FIELD] });
    }

    const worker = await h.startWorker(`
registry:
  kind: auto
  confluent: { url: ${registry.url}, timeoutMs: 2000 }
  directory: ${dir}
  fingerprints: { confluentSubjects: [access-value] }
routing: { from: record-name }
routes:
  access: { match: [com.acme.logs.Access], table: $DATASET.access, batch: { maxRows: 50, maxDelayMs: 50 }, ${metadata} }
  audit: { match: [com.acme.logs.Audit], table: $DATASET.audit, batch: { maxRows: 50, maxDelayMs: 50 }, ${metadata} }
  metric: { match: [com.acme.logs.Metric], table: $DATASET.metric, batch: { maxRows: 50, maxDelayMs: 50 }, ${metadata} }
`);

    const accessFp = fingerprintBytes(fingerprintSchema(JSON.stringify(accessV2)).fingerprint);
    const messages: Array<{ data: Buffer; attributes?: Record<string, string> }> = [];
    const expectedRows = new Map<string, number>(); // index in `messages` -> rows
    for (let i = 0; i < 10; i++) {
      messages.push({
        data: encode(audit, auditRecord(i)),
        attributes: {
          googclient_schemaname: `projects/test-project/schemas/${schemaName}`,
          googclient_schemarevisionid: auditRev.revisionId,
          googclient_schemaencoding: 'BINARY',
        },
      });
      messages.push({ data: Buffer.concat([encodeConfluentHeader(3), encode(metric, metricRecord(i))]) });
      messages.push({ data: Buffer.concat([Buffer.from([0xc3, 0x01]), accessFp, encode(accessV2, { ...accessRecord(i), latency_ms: null })]) });
      const records = Array.from({ length: 1 + (i % 4) }, (_, n) => encode(metric, metricRecord(100 + i * 10 + n)));
      messages.push({ data: buildContainer({ schema: metric, records, codec: i % 2 === 0 ? 'deflate' : 'null', blockSize: 2 }) });
      expectedRows.set(String(messages.length - 1), records.length);
    }
    // One container file whose second record can never be a row: the whole message is dead-lettered.
    // (a Metric with an extra array of nullable strings: [] converts, [null] cannot be a BigQuery array)
    const poison = { ...metric, fields: [...metric.fields, { name: 'tags', type: { type: 'array', items: ['null', 'string'] } }] };
    const poisonRecords = [
      Buffer.concat([encode(metric, metricRecord(1)), Buffer.from([0x00])]),
      Buffer.concat([encode(metric, metricRecord(2)), Buffer.from([0x02, 0x00, 0x00])]),
    ];
    messages.push({ data: buildContainer({ schema: poison, records: poisonRecords }) });
    const poisonIndex = messages.length - 1;

    const published = await h.publish(messages);
    const tables = ['access', 'audit', 'metric'].map((t) => h.table(t));
    const containerRows = [...expectedRows.values()].reduce((a, b) => a + b, 0);
    const totalRows = 30 + containerRows;
    await until('every row inserted and the poison message dead-lettered', async () => {
      await h.pullDeadLetters(100);
      return tables.reduce((n, t) => n + h.bigquery.rows(t).length, 0) >= totalRows && h.deadLetters.length >= 1;
    });

    const rows = tables.flatMap((t) => h.bigquery.rows(t));
    const insertIds = rows.map((r) => String(r.insertId));
    expect(new Set(insertIds).size).toBe(insertIds.length); // nothing stored twice
    expect(rows).toHaveLength(totalRows);
    for (const [index, id] of published.entries()) {
      if (index === poisonIndex) continue;
      const n = expectedRows.get(String(index));
      if (n === undefined || n === 1) {
        // one record: insertId is the message id
        expect(
          insertIds.filter((x) => x === id),
          `message ${index}`,
        ).toHaveLength(1);
      } else {
        const mine = rows.filter((r) => r.json._message_id === id);
        expect(mine.map((r) => r.insertId).sort()).toEqual(Array.from({ length: n }, (_, k) => `${id}:${k}`).sort());
        expect(mine.map((r) => r.json._record_index).sort()).toEqual(Array.from({ length: n }, (_, k) => k));
      }
    }
    expect(h.bigquery.rows(h.table('audit'))).toHaveLength(10);
    expect(h.bigquery.rows(h.table('access'))).toHaveLength(10);
    expect(h.bigquery.rows(h.table('metric'))).toHaveLength(10 + containerRows);

    expect(h.deadLetters).toHaveLength(1);
    const dead = h.deadLetters[0]!;
    expect(dead.attributes.tributary_source_message_id).toBe(published[poisonIndex]);
    expect(dead.attributes.tributary_error_code).toBe('CONVERSION_FAILED');
    expect(dead.attributes.tributary_error_message ?? '').toMatch(/^record 1 of 2: /);
    expect(dead.data.equals(messages[poisonIndex]!.data)).toBe(true);

    const samples = parseMetrics(await (await fetch(`http://127.0.0.1:${worker.port}/metrics`)).text());
    for (const framing of ['pubsub-schema', 'confluent', 'single-object'])
      expect(metricValue(samples, 'tributary_messages_received_total', { framing })).toBe(10);
    expect(metricValue(samples, 'tributary_messages_received_total', { framing: 'container-file' })).toBe(11);
    expect(metricValue(samples, 'tributary_embedded_schema_bytes_total', { route: 'metric' })).toBeGreaterThan(10 * JSON.stringify(metric).length);
    // Every message was settled once, none nacked: nothing comes back.
    expect(metricValue(samples, 'tributary_messages_settled_total', { outcome: 'nacked' }) ?? 0).toBe(0);
  });
});

describe('fingerprint sources', () => {
  let h: Harness;

  beforeEach(async () => {
    h = await Harness.create();
  });

  afterEach(async () => {
    await h.close();
  });

  it('lists every revision of the named Pub/Sub schemas, and every .avsc of a directory', async () => {
    const name = uniqueName('metric-schema');
    await createAvroSchema(h.pubsub, name, metric);
    await commitSchemaRevision(h.pubsub, name, { ...metric, fields: [...metric.fields, { name: 'unit', type: ['null', 'string'], default: null }] });
    const listed = await pubsubSchemaSource(h.pubsub, PROJECT, [name]).list();
    expect(listed).toHaveLength(2);
    expect(listed.every((s) => s.source.startsWith(`pubsub:projects/${PROJECT}/schemas/${name}@`))).toBe(true);
    expect(new Set(listed.map((s) => fingerprintSchema(s.definition).hex)).size).toBe(2);
    // a schema not created (yet) holds nothing; it does not make the index unavailable
    expect(await pubsubSchemaSource(h.pubsub, PROJECT, ['no-such-schema', name]).list()).toHaveLength(2);

    const dir = await mkdtemp(join(tmpdir(), 'tributary-fp-'));
    await writeFile(join(dir, '3.avsc'), JSON.stringify(metric));
    await writeFile(join(dir, 'notes.txt'), 'not a schema');
    expect((await directorySchemaSource(dir).list()).map((s) => s.source)).toEqual(['directory:3.avsc']);
    await expect(directorySchemaSource(join(dir, 'missing')).list()).rejects.toMatchObject({ code: 'REGISTRY_UNAVAILABLE' });
  });
});

// Asserted through insertAll's insertIds (`<messageId>:<n>`).
describe('a container file BigQuery refuses one row of', () => {
  let h: Harness;

  beforeEach(async () => {
    h = await Harness.create({ writeApi: 'insert-all' });
  });

  afterEach(async () => {
    await h.close();
  });

  it('lands the other rows, dead-letters the whole file naming the refused record, and acks the message once', async () => {
    h.bigquery.createTable(h.table('metric'), tableSchemaFor(metric));
    const worker = await h.startWorker(`
routing: { from: record-name }
routes:
  metric: { match: [com.acme.logs.Metric], table: $DATASET.metric, batch: { maxRows: 10, maxDelayMs: 50 }, metadata: { messageId: _message_id } }
`);
    h.bigquery.rejectRow((row) => (row.json.name === 'POISON' ? { location: 'name', message: 'Invalid value: POISON' } : null));
    const records = [metricRecord(1), { ...metricRecord(2), name: 'POISON' }, metricRecord(3)].map((r) => encode(metric, r));
    const file = buildContainer({ schema: metric, records, codec: 'deflate' });
    const [id] = await h.publish([{ data: file }]);
    await until('two rows and one dead letter', async () => {
      await h.pullDeadLetters(100);
      return h.bigquery.rows(h.table('metric')).length === 2 && h.deadLetters.length === 1;
    });
    expect(
      h.bigquery
        .rows(h.table('metric'))
        .map((r) => r.insertId)
        .sort(),
    ).toEqual([`${id}:0`, `${id}:2`]);
    const dead = h.deadLetters[0]!;
    expect(dead.attributes).toMatchObject({ tributary_error_code: 'BIGQUERY_ROW_INVALID', tributary_source_message_id: `${id}:1` });
    expect(dead.data.equals(file)).toBe(true);
    await until('the message settled', async () => {
      const samples = parseMetrics(await (await fetch(`http://127.0.0.1:${worker.port}/metrics`)).text());
      return (
        (metricValue(samples, 'tributary_messages_settled_total', { outcome: 'acked' }) ?? 0) === 2 &&
        (metricValue(samples, 'tributary_messages_settled_total', { outcome: 'dead-lettered' }) ?? 0) === 1
      );
    });
    // acked: nothing is redelivered to the subscription
    const samples = parseMetrics(await (await fetch(`http://127.0.0.1:${worker.port}/metrics`)).text());
    expect(metricValue(samples, 'tributary_messages_settled_total', { outcome: 'nacked' }) ?? 0).toBe(0);
    expect(metricValue(samples, 'tributary_messages_received_total', { framing: 'container-file' })).toBe(1);
  });
});
