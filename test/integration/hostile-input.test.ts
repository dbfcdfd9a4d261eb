import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { unwrapDeadLetter } from '../../src/core/dead-letter-attributes.js';
import { encodeConfluentHeader } from '../../src/core/schema-reference.js';
import { varint } from '../support/avro-wire.js';
import { accessRecord, accessV1, encode, metric, metricRecord, tableSchemaFor } from '../support/log-schemas.js';
import { until } from '../support/until.js';
import { Harness } from '../support/worker-harness.js';

const metadata = 'metadata: { messageId: _message_id, publishTime: _publish_time }';

describe('hostile input through the worker', () => {
  let h: Harness;

  beforeEach(async () => {
    h = await Harness.create();
  });

  afterEach(async () => {
    await h.close();
  });

  it('dead-letters bombs, non-UTF-8 strings and oversized attributes on the first delivery while the rest flows', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tributary-schemas-'));
    await writeFile(join(dir, '1.avsc'), JSON.stringify(accessV1));
    await writeFile(join(dir, '3.avsc'), JSON.stringify(metric));
    h.bigquery.createTable(h.table('access'), tableSchemaFor(accessV1));
    h.bigquery.createTable(h.table('metric'), tableSchemaFor(metric));
    await h.startWorker(`
registry: { kind: directory, directory: ${dir} }
routing: { from: attribute, key: log_type }
routes:
  access: { match: [access], table: $DATASET.access, batch: { maxDelayMs: 50 }, ${metadata} }
  metric: { match: [metric], table: $DATASET.metric, batch: { maxDelayMs: 50 }, ${metadata} }
`);
    const frame = (id: number, body: Buffer): Buffer => Buffer.concat([encodeConfluentHeader(id), body]);
    // ts, method, path "A", status, bytes, user_agent null, then a headers map claiming 2^30 entries
    const mapBomb = frame(1, Buffer.concat([Buffer.from([0x02, 0x00, 0x02, 0x41, 0x02, 0x02, 0x00]), varint(2 ** 30)]));
    const goodMetric = encode(metric, metricRecord(1));
    const notUtf8 = Buffer.from(goodMetric);
    // metric.name is "cpu": 3 bytes after its length; make them an invalid UTF-8 sequence
    notUtf8[1] = 0xc3;
    notUtf8[2] = 0x28;
    const manyAttributes = Object.fromEntries(Array.from({ length: 99 }, (_, i) => [`attr_${i}`, 'é'.repeat(512)]));
    const poison = [
      { data: mapBomb, attributes: { log_type: 'access' } },
      { data: frame(3, notUtf8), attributes: { log_type: 'metric' } },
      { data: frame(1, Buffer.from([0x02])), attributes: { log_type: 'access', ...manyAttributes } },
    ];
    const good = Array.from({ length: 40 }, (_, i) =>
      i % 2 === 0
        ? { data: frame(1, encode(accessV1, accessRecord(i))), attributes: { log_type: 'access' } }
        : { data: frame(3, encode(metric, metricRecord(i))), attributes: { log_type: 'metric' } },
    );
    const published = await h.publish([...poison, ...good]);
    const { deadLettered } = await h.expectConservation(published, [h.table('access'), h.table('metric')]);
    expect(deadLettered).toHaveLength(3);
    expect(h.insertedIds([h.table('access'), h.table('metric')])).toHaveLength(40);
    const byId = new Map(deadLettered.map((m) => [m.attributes.tributary_source_message_id, m]));
    const bomb = byId.get(published[0]);
    expect(bomb?.attributes).toMatchObject({ tributary_error_code: 'DECODE_FAILED', tributary_attempts: '1' });
    expect(bomb?.attributes.tributary_error_message).toMatch(/cannot fit/);
    expect(byId.get(published[1])?.attributes).toMatchObject({ tributary_error_code: 'DECODE_FAILED' });
    expect(byId.get(published[1])?.attributes.tributary_error_message).toMatch(/UTF-8/);
    // 99 attributes of 1 KB plus ours exceed 100: wrapped, and nothing of the original is lost.
    const wrapped = byId.get(published[2]);
    expect(wrapped?.attributes).toMatchObject({ tributary_error_code: 'DECODE_FAILED', tributary_wrapped: '1' });
    const original = unwrapDeadLetter(wrapped?.data ?? Buffer.alloc(0), wrapped?.attributes ?? {});
    expect(original.attributes).toEqual({ log_type: 'access', ...manyAttributes });
    expect(original.data.equals(poison[2]!.data)).toBe(true);
  });

  it('a registry answering garbage is retried, not trusted: nothing dead-lettered; a schema that does not parse is dead-lettered', async () => {
    const registry = await h.confluentRegistry();
    registry.register(1, accessV1);
    registry.register(9, '{"type": "record", "name": "Broken", "fields": [{"name": "x", "type": "no-such-type"}]}');
    registry.setGarbage('not-json');
    h.bigquery.createTable(h.table('access'), tableSchemaFor(accessV1));
    await h.startWorker(`
registry: { kind: confluent, confluent: { url: ${registry.url}, timeoutMs: 1000 } }
routing: { from: attribute, key: log_type }
routes:
  access: { match: [access], table: $DATASET.access, batch: { maxDelayMs: 50 }, ${metadata} }
`);
    const frame = (id: number, body: Buffer): Buffer => Buffer.concat([encodeConfluentHeader(id), body]);
    const good = await h.publish(
      Array.from({ length: 10 }, (_, i) => ({ data: frame(1, encode(accessV1, accessRecord(i))), attributes: { log_type: 'access' } })),
    );
    // Garbage answers until some have been seen: the messages are retried and nacked, never dead-lettered.
    await until('the registry to have answered garbage three times', () => registry.requests.length >= 3, 20_000);
    expect(await h.pullDeadLetters(300)).toEqual([]);
    registry.setGarbage(false);
    const broken = await h.publish([{ data: frame(9, Buffer.from([0x02])), attributes: { log_type: 'access' } }]);
    const { deadLettered } = await h.expectConservation([...good, ...broken], [h.table('access')], 60_000);
    expect(deadLettered.map((m) => m.attributes.tributary_source_message_id)).toEqual(broken);
    expect(deadLettered[0]?.attributes.tributary_error_code).toBe('SCHEMA_INVALID');
  });
});
