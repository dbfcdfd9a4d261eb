import { describe, expect, it } from 'vitest';
import { EmbeddedSchemaCache } from '../../src/core/container-file.js';
import { FingerprintIndex, FingerprintSchemaRegistry } from '../../src/core/fingerprint-index.js';
import { decodeMessage, describeSchemaRef, rowIdOf } from '../../src/core/message-decoder.js';
import { SchemaCache, type SchemaRegistry } from '../../src/core/schema-cache.js';
import { fingerprintBytes, fingerprintSchema } from '../../src/core/schema-fingerprint.js';
import { encodeConfluentHeader } from '../../src/core/schema-reference.js';
import { TributaryError } from '../../src/errors.js';
import { buildContainer } from '../support/avro-container.js';
import { encode, metric, metricRecord } from '../support/log-schemas.js';

const text = JSON.stringify(metric);
const ids: SchemaRegistry = {
  name: 'test',
  async fetch(ref) {
    if (ref.kind === 'confluent' && ref.id === 7) return text;
    if (ref.kind === 'pubsub' && ref.revisionId === 'r1') return text;
    throw new TributaryError('SCHEMA_NOT_FOUND', 'unknown');
  },
};
const index = new FingerprintIndex([{ name: 'test', list: async () => [{ source: 'metric.avsc', definition: text }] }], {
  now: () => 0,
  minRefreshIntervalMs: 60_000,
});
const deps = {
  schemas: new SchemaCache(new FingerprintSchemaRegistry(ids, index), 100, { hit() {}, miss() {}, fetched() {} }),
  embedded: new EmbeddedSchemaCache(),
};
const body = encode(metric, metricRecord(1));
const fp = fingerprintSchema(text);

describe('decodeMessage: one function for the four framings', () => {
  it('Pub/Sub schema attributes', async () => {
    const m = await decodeMessage({ attributes: { googclient_schemaname: 'projects/p/schemas/metric', googclient_schemarevisionid: 'r1' }, data: body }, deps);
    expect(m.framing).toBe('pubsub-schema');
    expect(m.records).toHaveLength(1);
    expect(describeSchemaRef(m.schemaRef)).toBe('Pub/Sub schema projects/p/schemas/metric revision r1 (BINARY)');
  });

  it('Confluent header', async () => {
    const m = await decodeMessage({ attributes: {}, data: Buffer.concat([encodeConfluentHeader(7), body]) }, deps);
    expect(m.framing).toBe('confluent');
    expect(m.schemaRef).toEqual({ kind: 'confluent', id: 7 });
    expect(m.embeddedSchemaBytes).toBe(0);
  });

  it('single-object encoding, resolved through the fingerprint index', async () => {
    const m = await decodeMessage({ attributes: {}, data: Buffer.concat([Buffer.from([0xc3, 0x01]), fingerprintBytes(fp.fingerprint), body]) }, deps);
    expect(m.framing).toBe('single-object');
    expect(m.records[0]).toMatchObject({ name: (metricRecord(1) as { name: string }).name });
    expect(describeSchemaRef(m.schemaRef)).toMatch(new RegExp(`^single-object fingerprint ${fp.hex} \\(CRC-64-AVRO -?\\d+\\)$`));
  });

  it('an unknown fingerprint is SCHEMA_NOT_FOUND', async () => {
    const data = Buffer.concat([Buffer.from([0xc3, 0x01]), Buffer.alloc(8, 7), body]);
    await expect(decodeMessage({ attributes: {}, data }, deps)).rejects.toMatchObject({ code: 'SCHEMA_NOT_FOUND' });
  });

  it('container file with several records', async () => {
    const file = buildContainer({ schema: metric, records: [body, body, body], codec: 'deflate' });
    const m = await decodeMessage({ attributes: {}, data: file }, deps);
    expect(m.framing).toBe('container-file');
    expect(m.records).toHaveLength(3);
    expect(m.embeddedSchemaBytes).toBeGreaterThan(text.length);
    expect(describeSchemaRef(m.schemaRef)).toBe(`embedded schema sha256:${EmbeddedSchemaCache.hashOf(text)}`);
  });

  it('row ids: the message id alone for one record, <messageId>:<n> for several', () => {
    expect(rowIdOf('42', 0, 1)).toBe('42');
    expect(rowIdOf('42', 3, 5)).toBe('42:3');
  });
});
